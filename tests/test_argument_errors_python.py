"""A non-tensor where a Python-defined public function takes a tensor raises PyTorch's
TypeError, naming the function and the argument (`mse_loss(): argument 'target' (position 2)
must be Tensor, not Bad`), instead of an AttributeError from deep inside or a silent result."""

import bprop as bp
import bprop.nn.functional as F
import bprop.nn.init as init
import bprop.nn.utils.rnn as rnn
import pytest


class Bad:
    def __repr__(self):
        return "Bad()"


BAD = Bad()

# bp.<name>(Bad()): the argument is 'input' unless named.
BP_UNARY = (
    "ones_like zeros_like empty_like rand_like randn_like bernoulli isfinite isinf isnan log2 "
    "log10 norm rsqrt ceil floor frac is_floating_point round trunc argsort flip sort t tril "
    "triu unbind repeat_interleave diag diagonal diag_embed trace diff nansum nanmean median "
    "mode nan_to_num logit sinh cosh tan atanh signbit unique unique_consecutive bincount histc "
    "rot90 ravel diagflat cov corrcoef nanmedian positive msort"
).split()
BP_ALIASES = "absolute arcsinh arccosh arctanh fix".split()
BP_VARARGS = "atleast_1d atleast_2d atleast_3d block_diag cartesian_prod".split()

# Tensor.<name>(Bad()): the second argument of the function form.
METHODS = {
    "allclose": ("other", 2),
    "equal": ("other", 2),
    "cross": ("other", 2),
    "inner": ("other", 2),
    "kron": ("other", 2),
    "vdot": ("other", 2),
    "mv": ("vec", 2),
    "take_along_dim": ("indices", 2),
    "type_as": ("other", 1),
    "expand_as": ("other", 1),
    "reshape_as": ("other", 1),
    "view_as": ("other", 1),
}

# F.<name>(t, Bad()) and F.<name>(Bad(), t).
F_PAIRS = {
    "mse_loss": ("input", "target"),
    "l1_loss": ("input", "target"),
    "smooth_l1_loss": ("input", "target"),
    "huber_loss": ("input", "target"),
    "binary_cross_entropy": ("input", "target"),
    "poisson_nll_loss": ("input", "target"),
    "multi_margin_loss": ("input", "target"),
    "multilabel_margin_loss": ("input", "target"),
    "conv1d": ("input", "weight"),
    "prelu": ("input", "weight"),
    "pairwise_distance": ("x1", "x2"),
    "grid_sample": ("input", "grid"),
}

# F.<name>(Bad()).
F_UNARY = {
    "softmax": "input",
    "log_softmax": "input",
    "softmin": "input",
    "hardtanh": "input",
    "hardtanh_": "input",
    "relu6": "input",
    "relu_": "input",
    "softsign": "input",
    "glu": "input",
    "hardshrink": "input",
    "pdist": "input",
    "dropout1d": "input",
    "dropout2d": "input",
    "dropout3d": "input",
    "alpha_dropout": "input",
    "feature_alpha_dropout": "input",
    "interpolate": "input",
    "upsample": "input",
    "instance_norm": "input",
    "gumbel_softmax": "logits",
    "one_hot": "tensor",
}

INIT = (
    "uniform_ normal_ zeros_ ones_ xavier_uniform_ xavier_normal_ kaiming_uniform_ "
    "kaiming_normal_ trunc_normal_ orthogonal_ eye_"
).split()


def _cases():
    t = bp.ones(2, 3)
    for name in BP_UNARY:
        yield f"bp.{name}", name, "input", 1, getattr(bp, name), (BAD,)
    for name in BP_ALIASES:
        yield f"bp.{name}", name, "input", 1, getattr(bp, name), (BAD,)
    for name in BP_VARARGS:
        yield f"bp.{name}", name, "tensors", 1, getattr(bp, name), (BAD,)
        yield f"bp.{name}[2]", name, "tensors", 2, getattr(bp, name), (bp.ones(2), BAD)
    yield "bp.trapezoid", "trapezoid", "y", 1, bp.trapezoid, (BAD,)
    yield "bp.trapz", "trapz", "y", 1, bp.trapz, (BAD,)
    yield "bp.full_like", "full_like", "input", 1, bp.full_like, (BAD, 1.0)
    yield "bp.randint_like", "randint_like", "input", 1, bp.randint_like, (BAD, 3)
    for name, (arg, position) in METHODS.items():
        yield f"Tensor.{name}", name, arg, position, getattr(t, name), (BAD,)
    for name, (first, second) in F_PAIRS.items():
        fn = getattr(F, name)
        yield f"F.{name}(t, Bad)", name, second, 2, fn, (t, BAD)
        yield f"F.{name}(Bad, t)", name, first, 1, fn, (BAD, t)
    for name, arg in F_UNARY.items():
        yield f"F.{name}", name, arg, 1, getattr(F, name), (BAD,)
    for name in INIT:
        yield f"init.{name}", name, "tensor", 1, getattr(init, name), (BAD,)
    yield (
        "rnn.invert_permutation",
        "invert_permutation",
        "permutation",
        1,
        rnn.invert_permutation,
        (BAD,),
    )


CASES = list(_cases())


@pytest.mark.parametrize(
    ("function", "argument", "position", "call", "args"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_non_tensor_argument_names_function_and_argument(function, argument, position, call, args):
    with pytest.raises(TypeError) as info:
        call(*args)
    message = str(info.value)
    assert message == (
        f"{function}(): argument '{argument}' (position {position}) must be Tensor, not Bad"
    )


def test_nothing_changes_when_a_loss_gets_a_bad_target():
    x = bp.ones(3, requires_grad=True)
    with pytest.raises(TypeError, match=r"mse_loss\(\): argument 'target'"):
        F.mse_loss(x, [1.0, 2.0, 3.0])
    assert x.grad is None and x.tolist() == [1.0, 1.0, 1.0]


def test_init_leaves_nothing_half_written():
    # zeros_ on a non-tensor used to reach fill_; now it refuses before touching anything.
    with pytest.raises(TypeError, match=r"zeros_\(\): argument 'tensor' \(position 1\)"):
        init.zeros_([1.0, 2.0])


def test_rnn_base_names_an_unknown_mode():
    # RNNBase looked the mode up in its gate table and raised KeyError('a').
    with pytest.raises(ValueError, match=r"\[RNNBase\] Unrecognized RNN mode: 'a'"):
        bp.nn.RNNBase("a", 3, 3)
    assert bp.nn.RNNBase("GRU", 3, 4).hidden_size == 4


def test_tensors_still_work():
    t = bp.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert bp.ones_like(t).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert bp.isnan(t).tolist() == [[False, False], [False, False]]
    assert bp.cartesian_prod(bp.tensor([1, 2]), bp.tensor([3])).tolist() == [[1, 3], [2, 3]]
    assert F.mse_loss(t, bp.zeros(2, 2)).item() == pytest.approx(7.5)
    assert bp.fix(bp.tensor([-1.5, 2.5])).tolist() == [-1.0, 2.0]
    assert bp.atleast_2d(bp.tensor([1.0])).shape == (1, 1)
