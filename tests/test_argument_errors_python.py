"""A non-tensor where a Python-defined public function takes a tensor raises PyTorch's
TypeError, naming the function and the argument (`mse_loss(): argument 'target' (position 2)
must be Tensor, not Bad`), instead of an AttributeError from deep inside or a silent result."""

import bprop as bp
import bprop.nn.functional as F
import bprop.nn.init as init
import bprop.nn.utils.rnn as rnn
import numpy as np
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


# A wrong-typed number argument names the function and the argument, from the shared helper
# that first reads it: (label, call, exact message).
NUMBER_CASES = [
    (
        "F.dropout p",
        lambda t: F.dropout(t, BAD),
        "dropout(): argument 'p' (position 2) must be float",
    ),
    (
        "F.dropout2d p (_check_probability)",
        lambda t: F.dropout2d(t, p=BAD),
        "dropout2d(): argument 'p' (position 2) must be float",
    ),
    (
        "F.alpha_dropout p (_check_probability)",
        lambda t: F.alpha_dropout(t, BAD),
        "alpha_dropout(): argument 'p' (position 2) must be float",
    ),
    (
        "F.max_pool2d kernel_size (_pair)",
        lambda t: F.max_pool2d(t, BAD),
        "max_pool2d(): argument 'kernel_size' (position 2) must be tuple of ints",
    ),
    (
        "F.avg_pool2d stride (_pair)",
        lambda t: F.avg_pool2d(t, 2, BAD),
        "avg_pool2d(): argument 'stride' (position 3) must be tuple of ints",
    ),
    (
        "F.max_pool1d kernel_size (_single)",
        lambda t: F.max_pool1d(t, BAD),
        "max_pool1d(): argument 'kernel_size' (position 2) must be tuple of ints",
    ),
    (
        "F.adaptive_avg_pool1d output_size",
        lambda t: F.adaptive_avg_pool1d(t, BAD),
        "adaptive_avg_pool1d(): argument 'output_size' (position 2) must be tuple of ints",
    ),
    (
        "F.layer_norm normalized_shape",
        lambda t: F.layer_norm(t, BAD),
        "layer_norm(): argument 'normalized_shape' (position 2) must be tuple of ints",
    ),
    (
        "F.pad pad",
        lambda t: F.pad(t, BAD),
        "pad(): argument 'pad' (position 2) must be tuple of ints",
    ),
    (
        "F.softmax dim (_softmax_dim)",
        lambda t: F.softmax(t, BAD),
        "softmax(): argument 'dim' (position 2) must be int",
    ),
    (
        "F.leaky_relu negative_slope",
        lambda t: F.leaky_relu(t, BAD),
        "leaky_relu(): argument 'negative_slope' (position 2) must be float",
    ),
    (
        "F.leaky_relu_ negative_slope",
        lambda t: F.leaky_relu_(t, BAD),
        "leaky_relu_(): argument 'negative_slope' (position 2) must be float",
    ),
    (
        "F.hardtanh max_val",
        lambda t: F.hardtanh(t, -1.0, BAD),
        "hardtanh(): argument 'max_val' (position 3) must be float",
    ),
    ("F.elu alpha", lambda t: F.elu(t, BAD), "elu(): argument 'alpha' (position 2) must be float"),
    (
        "F.interpolate size",
        lambda t: F.interpolate(t, size=BAD),
        "interpolate(): argument 'size' (position 2) must be int",
    ),
    (
        "bp.cat",
        lambda t: bp.cat(BAD),
        "cat(): argument 'tensors' (position 1) must be tuple of Tensors",
    ),
    ("bp.cat dim", lambda t: bp.cat([t, t], BAD), "cat(): argument 'dim' (position 2) must be int"),
    (
        "bp.stack",
        lambda t: bp.stack(BAD),
        "stack(): argument 'tensors' (position 1) must be tuple of Tensors",
    ),
    (
        "bp.hstack",
        lambda t: bp.hstack(BAD),
        "hstack(): argument 'tensors' (position 1) must be tuple of Tensors",
    ),
    (
        "Tensor.argmax dim",
        lambda t: t.argmax(BAD),
        "argmax(): argument 'dim' (position 2) must be int",
    ),
    ("Tensor.max dim", lambda t: t.max(BAD), "max(): argument 'dim' (position 2) must be int"),
    (
        "Tensor.unsqueeze dim",
        lambda t: t.unsqueeze(BAD),
        "unsqueeze(): argument 'dim' (position 2) must be int",
    ),
    (
        "Tensor.flatten end_dim",
        lambda t: t.flatten(0, BAD),
        "flatten(): argument 'end_dim' (position 3) must be int",
    ),
    ("Tensor.norm p", lambda t: t.norm(BAD), "norm(): argument 'p' (position 2) must be float"),
    (
        "Tensor.quantile q",
        lambda t: t.quantile(BAD),
        "quantile(): argument 'q' (position 2) must be float",
    ),
    (
        "Tensor.histc max",
        lambda t: t.histc(10, 0.0, BAD),
        "histc(): argument 'max' (position 4) must be float",
    ),
    (
        "Tensor.random_ to",
        lambda t: t.random_(0, BAD),
        "random_(): argument 'to' (position 2) must be int",
    ),
    (
        "Tensor.exponential_",
        lambda t: t.exponential_(BAD),
        "exponential_(): argument 'lambd' (position 1) must be float",
    ),
]


@pytest.mark.parametrize(
    ("call", "expected"), [c[1:] for c in NUMBER_CASES], ids=[c[0] for c in NUMBER_CASES]
)
def test_wrong_number_argument_names_function_and_argument(call, expected):
    t = bp.ones(2, 3, 4)
    before = t.tolist()
    with pytest.raises(TypeError) as info:
        call(t)
    assert str(info.value) == f"{expected}, not Bad"
    assert t.tolist() == before  # nothing the user owns changed (random_ and exponential_ too)


def test_a_bad_item_of_a_tuple_argument_is_named_with_its_position():
    t = bp.ones(1, 1, 4, 4)
    with pytest.raises(TypeError) as info:
        F.max_pool2d(t, (2, BAD))
    assert str(info.value) == (
        "max_pool2d(): argument 'kernel_size' (position 2) must be tuple of ints, but found "
        "element of type Bad at pos 1"
    )
    with pytest.raises(TypeError) as info:
        bp.vstack([bp.ones(2), BAD])
    assert str(info.value) == (
        "vstack(): argument 'tensors' (position 1) must be tuple of Tensors, but found element "
        "of type Bad at pos 1"
    )


def test_set_printoptions_changes_nothing_when_an_argument_is_wrong():
    from bprop import _format

    before = (_format._PRECISION, _format._EDGE_ITEMS, _format._LINE_WIDTH)
    with pytest.raises(TypeError) as info:
        bp.set_printoptions(precision=2, linewidth=BAD)
    assert (
        str(info.value)
        == "set_printoptions(): argument 'linewidth' (position 4) must be int, not Bad"
    )
    assert (_format._PRECISION, _format._EDGE_ITEMS, _format._LINE_WIDTH) == before


def test_valid_number_arguments_still_give_the_right_values():
    t = bp.tensor([[-2.0, -0.5, 0.5, 2.0]])
    assert F.dropout(t, p=0.0).tolist() == t.tolist()
    assert F.dropout1d(t.reshape(1, 1, 4), 0.0).tolist() == [[[-2.0, -0.5, 0.5, 2.0]]]
    assert F.leaky_relu(t, 0.5).tolist() == [[-1.0, -0.25, 0.5, 2.0]]
    assert F.hardtanh(t, -1, 1).tolist() == [[-1.0, -0.5, 0.5, 1.0]]
    assert F.elu(t, alpha=bp.tensor(0.0)).tolist() == [[0.0, 0.0, 0.5, 2.0]]  # one-element tensor
    assert F.softmax(t, np.int64(1)).sum().item() == pytest.approx(1.0)  # numpy integer dim
    x = bp.arange(16.0).reshape(1, 1, 4, 4)
    assert F.max_pool2d(x, 2).tolist() == [[[[5.0, 7.0], [13.0, 15.0]]]]
    assert F.max_pool2d(x, (2, np.int64(2))).tolist() == [[[[5.0, 7.0], [13.0, 15.0]]]]
    assert F.avg_pool1d(bp.arange(4.0).reshape(1, 1, 4), (2,)).tolist() == [[[0.5, 2.5]]]
    assert F.adaptive_avg_pool1d(bp.arange(4.0).reshape(1, 4), 2).tolist() == [[0.5, 2.5]]
    assert F.pad(bp.ones(2), (1, 0)).tolist() == [0.0, 1.0, 1.0]
    assert F.layer_norm(bp.tensor([1.0, 3.0]), [2]).tolist() == pytest.approx([-1.0, 1.0], abs=1e-4)
    assert bp.cat([bp.ones(1), bp.zeros(2)]).tolist() == [1.0, 0.0, 0.0]
    assert bp.cat((bp.ones(1, 1) for _ in range(2)), 1).tolist() == [[1.0, 1.0]]  # a generator
    assert bp.stack([bp.ones(2), bp.zeros(2)], dim=1).tolist() == [[1.0, 0.0], [1.0, 0.0]]
    assert bp.hstack([bp.ones(1), bp.zeros(1)]).tolist() == [1.0, 0.0]
    assert t.argmax(1).tolist() == [3] and t.max(1).values.tolist() == [2.0]
    assert t.unsqueeze(0).shape == (1, 1, 4) and t.flatten(0, -1).shape == (4,)
    assert t.norm(1).item() == pytest.approx(5.0)
    assert bp.copysign(bp.ones(2), -1.0).tolist() == [-1.0, -1.0]
