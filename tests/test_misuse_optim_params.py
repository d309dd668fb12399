"""Malformed parameter lists give every optimizer a TypeError/ValueError naming it (PyTorch's
messages), never a pybind11 argument dump, and leave the model's parameters unchanged; a
parameter group held after its optimizer is gone stays a usable dict."""

import gc

import bprop as bp
import pytest

OPTIMIZERS = [
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "Adamax",
    "NAdam",
    "RAdam",
    "ASGD",
]

_NOT_ITERABLE = "params argument given to the optimizer should be an iterable of Tensors or dicts"
_NOT_TENSOR = "optimizer can only optimize Tensors, but one of the params is"
_GROUP_PARAMS = "a parameter group's 'params' should be a Tensor or an iterable of Tensors"


def _model():
    bp.manual_seed(0)
    return bp.nn.Linear(3, 2)


# (what params is, given the model) -> (exception, message fragment)
CASES = {
    "string among tensors": (lambda m: [m.weight, "bias"], TypeError, _NOT_TENSOR + " str"),
    "bare string": (lambda m: "weight", TypeError, _NOT_ITERABLE + ", but got str"),
    "bare tensor": (lambda m: m.weight, TypeError, _NOT_ITERABLE + ", but got Parameter"),
    "int": (lambda m: 3, TypeError, _NOT_ITERABLE + ", but got int"),
    "None": (lambda m: None, TypeError, _NOT_ITERABLE + ", but got NoneType"),
    "float": (lambda m: 0.5, TypeError, _NOT_ITERABLE + ", but got float"),
    "a dict, not a list of dicts": (
        lambda m: {"params": [m.weight]},
        TypeError,
        _NOT_ITERABLE + ", but got dict",
    ),
    "dict group holding an int": (
        lambda m: [{"params": [m.weight, 3]}],
        TypeError,
        _NOT_TENSOR + " int",
    ),
    "dict group params None": (
        lambda m: [{"params": None}],
        TypeError,
        _GROUP_PARAMS + ", but got NoneType",
    ),
    "dict group params string": (
        lambda m: [{"params": "weight"}],
        TypeError,
        _GROUP_PARAMS + ", but got str",
    ),
    "dict group params int": (
        lambda m: [{"params": 7}],
        TypeError,
        _GROUP_PARAMS + ", but got int",
    ),
    "dict group without params": (
        lambda m: [{"lr": 0.1}],
        ValueError,
        "a parameter group needs the key 'params'",
    ),
    "nested list": (lambda m: [[m.weight]], TypeError, _NOT_TENSOR + " list"),
    "integer tensor": (
        lambda m: [bp.ones(2, dtype=bp.int64)],
        TypeError,
        "only floating point tensors can be optimized",
    ),
    "empty list": (lambda m: [], ValueError, "got an empty parameter list"),
    "empty generator": (lambda m: iter([]), ValueError, "got an empty parameter list"),
    "duplicate": (
        lambda m: [m.weight, m.weight],
        ValueError,
        "optimizer contains a parameter group with duplicate parameters",
    ),
    "tensor after a dict": (
        lambda m: [{"params": [m.weight]}, m.bias],
        TypeError,
        "param_group must be a dict, but got Parameter",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_malformed_params_raise_naming_the_optimizer(name, case):
    make, exc, fragment = CASES[case]
    model = _model()
    before = [p.detach().clone().tolist() for p in model.parameters()]
    with pytest.raises(exc) as info:
        getattr(bp.optim, name)(make(model), lr=0.1)
    message = str(info.value)
    assert message.startswith(f"[{name}] "), message
    assert fragment in message, message
    assert "incompatible function arguments" not in message
    assert [p.tolist() for p in model.parameters()] == before
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


ADD_CASES = {
    "None": (None, TypeError, "param_group must be a dict, but got NoneType"),
    "int": (3, TypeError, "param_group must be a dict, but got int"),
    "string": ("params", TypeError, "param_group must be a dict, but got str"),
    "params None": ({"params": None}, TypeError, _GROUP_PARAMS + ", but got NoneType"),
    "params string": ({"params": "ab"}, TypeError, _GROUP_PARAMS + ", but got str"),
    "params int": ({"params": 5}, TypeError, _GROUP_PARAMS + ", but got int"),
    "params holding an int": ({"params": [5]}, TypeError, _NOT_TENSOR + " int"),
}


@pytest.mark.parametrize("case", sorted(ADD_CASES))
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_add_param_group_refuses_malformed_groups(name, case):
    group, exc, fragment = ADD_CASES[case]
    model = _model()
    opt = getattr(bp.optim, name)([model.weight], lr=0.1)
    with pytest.raises(exc) as info:
        opt.add_param_group(group)
    assert str(info.value).startswith(f"[{name}] ") and fragment in str(info.value)
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["params"] == [model.weight]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_add_param_group_refuses_a_parameter_already_optimized(name):
    model = _model()
    opt = getattr(bp.optim, name)([model.weight], lr=0.1)
    with pytest.raises(ValueError, match=rf"\[{name}\] some parameters appear in more than one"):
        opt.add_param_group({"params": [model.bias, model.weight]})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_group_outlives_its_optimizer(name):
    model = _model()
    opt = getattr(bp.optim, name)(model.parameters(), lr=0.1)
    g = opt.param_groups[0]
    del opt
    gc.collect()
    g["lr"] = 0.2
    g.update(lr=0.3)
    assert g["lr"] == 0.3
    assert g["params"] == list(model.parameters())
    assert "params" in list(g.keys()) and "lr" in list(g.keys())
    assert "'lr': 0.3" in repr(g)
    assert dict(g)["lr"] == 0.3
