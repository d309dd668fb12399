"""Device plumbing: bprop.device, device= on the factories, Tensor.to/cpu/cuda, and the CUDA,
AMP, accelerator, backends and ONNX namespaces PyTorch programs touch (issue 15).

Compared with PyTorch 2.13 (CPU build) where it behaves the same; bprop runs on the CPU only,
so every other device raises a RuntimeError that says so."""

from __future__ import annotations

import copy
import pickle
import warnings

import bprop as bp
import numpy as np
import pytest
from bprop._device import check_device, parse_to_args

# ---- bprop.device ----

_DEVICE_ARGS = [("cpu",), ("cpu:0",), ("cpu", 0), ("cuda",), ("cuda:1",), ("cuda", 2), ("mps",)]


@pytest.mark.parametrize("args", _DEVICE_ARGS, ids=str)
def test_device_prints_and_compares_like_torch(args):
    torch = pytest.importorskip("torch")
    ours, theirs = bp.device(*args), torch.device(*args)
    assert repr(ours) == repr(theirs)
    assert str(ours) == str(theirs)
    assert (ours.type, ours.index) == (theirs.type, theirs.index)
    assert bp.device(ours) == ours and hash(bp.device(ours)) == hash(ours)
    assert pickle.loads(pickle.dumps(ours)) == ours
    assert copy.deepcopy(ours) == ours


def test_device_equality_follows_torch():
    torch = pytest.importorskip("torch")
    pairs = [("cpu", "cpu"), ("cpu", "cpu:0"), ("cuda:0", "cuda:1"), ("cuda", "cuda")]
    for a, b in pairs:
        assert (bp.device(a) == bp.device(b)) == (torch.device(a) == torch.device(b)), (a, b)
    # A device is not equal to its string, in either library.
    assert (bp.device("cpu") == "cpu") is (torch.device("cpu") == "cpu") is False
    assert len({bp.device("cpu"), bp.device("cpu"), bp.device("cpu", 0)}) == 2


@pytest.mark.parametrize("bad", ["foo", "CPU", "cpu:x", "cuda:-1", "cpu:0:1", " cpu", "cuda:01"])
def test_malformed_device_strings_raise_runtime_error_like_torch(bad):
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError) as theirs:
        torch.device(bad)
    with pytest.raises(RuntimeError) as ours:
        bp.device(bad)
    assert str(ours.value) == "[device] " + str(theirs.value)


def test_device_index_errors():
    with pytest.raises(RuntimeError, match="must not be negative"):
        bp.device("cpu", -1)
    with pytest.raises(RuntimeError, match="must not include an index"):
        bp.device("cuda:0", 1)
    with pytest.raises(RuntimeError, match="CPU only"):
        bp.device(0)  # an accelerator index
    with pytest.raises(TypeError):
        bp.device(None)


def test_device_as_context_manager():
    with bp.device("cpu") as d:
        assert bp.zeros(1).device == d
    with pytest.raises(RuntimeError, match="cuda"), bp.device("cuda"):
        pass


def test_check_device():
    for ok in (None, "cpu", "cpu:0", bp.device("cpu"), bp.device("cpu", 3)):
        check_device("op", ok)
    for bad in ("cuda", "cuda:0", "mps", "xpu", bp.device("cuda", 1), 0):
        with pytest.raises(RuntimeError, match=r"^\[op\] device '.*' is not available: .*CPU"):
            check_device("op", bad)
    with pytest.raises(RuntimeError, match=r"^\[op\] Expected one of"):
        check_device("op", "gpu")
    with pytest.raises(TypeError, match=r"^\[op\]"):
        check_device("op", 1.5)


# ---- parse_to_args: the argument forms of Tensor.to / Module.to ----


def test_parse_to_args_forms():
    x = bp.zeros(2, dtype=bp.int64)
    assert parse_to_args("to") == (None, False)
    assert parse_to_args("to", bp.float64) == (bp.float64, False)
    assert parse_to_args("to", bp.float64, False, True) == (bp.float64, True)
    assert parse_to_args("to", "cpu") == (None, False)
    assert parse_to_args("to", None) == (None, False)
    assert parse_to_args("to", bp.device("cpu"), bp.float64) == (bp.float64, False)
    assert parse_to_args("to", "cpu", bp.float64, True, True) == (bp.float64, True)
    assert parse_to_args("to", x) == (bp.int64, False)
    assert parse_to_args("to", x, non_blocking=True, copy=True) == (bp.int64, True)
    kw = {"device": "cpu", "dtype": bp.bool, "non_blocking": True, "memory_format": None}
    assert parse_to_args("to", **kw) == (bp.bool, False)


@pytest.mark.parametrize(
    "args, kwargs",
    [
        (("cpu", "cpu"), {}),
        ((bp.float32, bp.float64), {}),
        ((), {"dtype": "x"}),
        ((bp.zeros(1), bp.float64), {}),
        ((), {"foo": 1}),
        ((bp.float32,), {"dtype": bp.float64}),
        (("cpu",), {"device": "cpu"}),
        ((bp.float32,), {"copy": 1}),
    ],
    ids=str,
)
def test_invalid_to_arguments_raise_type_error_like_torch(args, kwargs):
    torch = pytest.importorskip("torch")
    convert = {bp.float32: torch.float32, bp.float64: torch.float64}

    def to_torch(value):
        if isinstance(value, bp.Tensor):
            return torch.zeros(1)
        return convert.get(value, value) if isinstance(value, bp.dtype) else value

    with pytest.raises(TypeError):
        torch.zeros(1).to(*map(to_torch, args), **{k: to_torch(v) for k, v in kwargs.items()})
    with pytest.raises(TypeError, match=r"^\[to\]"):
        parse_to_args("to", *args, **kwargs)


# ---- Tensor.device, is_cuda, to, cpu, cuda ----


def test_tensor_device_properties():
    x = bp.ones(2)
    assert x.device == bp.device("cpu") and repr(x.device) == "device(type='cpu')"
    assert x.is_cuda is False and x.is_cpu is True
    assert x.device.index is None


def test_to_returns_self_when_nothing_changes_as_torch():
    torch = pytest.importorskip("torch")
    forms = [
        (("cpu",), {}),
        ((None,), {}),
        ((), {}),
        (("cpu",), {"non_blocking": True}),
        ((), {"device": "cpu", "dtype": "float32"}),
        (("float32",), {}),
        (("float32", False, True), {}),
        (("cpu", "float32", False, True), {}),
        ((), {"dtype": "float32", "copy": True}),
        (("float64",), {}),
        (("cpu", "float64"), {}),
        (("other",), {}),
        (("other",), {"copy": True}),
    ]
    for args, kwargs in forms:

        def resolve(value, lib, other):
            if value == "other":
                return other
            if value in ("float32", "float64"):
                return getattr(lib, value)
            return value

        results = []
        for lib in (torch, bp):
            x = lib.tensor([1.5, -2.0], requires_grad=True)
            other = lib.zeros(1)
            a = [resolve(v, lib, other) for v in args]
            kw = {k: resolve(v, lib, other) for k, v in kwargs.items()}
            y = x.to(*a, **kw)
            results.append((y is x, str(y.dtype).split(".")[-1], y.tolist(), y.requires_grad))
        assert results[0] == results[1], (args, kwargs)


def test_to_copy_and_dtype_changes_are_differentiable():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    y = x.to("cpu", bp.float64)
    assert y.dtype == bp.float64 and y.grad_fn is not None
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    z = x.to(copy=True)
    assert z is not x and not z._is_same(x) and z.grad_fn is not None
    z.detach().fill_(0.0)
    assert x.tolist() == [1.0, 2.0]  # the copy has its own memory


def test_to_other_tensor_takes_its_dtype():
    x = bp.tensor([1.7, -2.2])
    y = x.to(bp.zeros(3, dtype=bp.int64), non_blocking=True)
    assert y.dtype == bp.int64 and y.tolist() == [1, -2]


@pytest.mark.parametrize("where", ["cuda", "cuda:0", bp.device("cuda", 1), "mps", "xpu", 0])
def test_to_another_device_raises_naming_it(where):
    x = bp.ones(2)
    name = f"cuda:{where}" if isinstance(where, int) else str(where)
    with pytest.raises(RuntimeError, match=rf"^\[to\] device '{name}' is not available.*CPU"):
        x.to(where)
    with pytest.raises(RuntimeError, match=r"CPU only"):
        x.to(device=where, dtype=bp.float64)


def test_cpu_and_cuda():
    x = bp.ones(2, requires_grad=True)
    assert x.cpu() is x
    for args in [(), (0,), ("cuda:1",)]:
        with pytest.raises(RuntimeError, match=r"^\[cuda\] .*CPU only"):
            x.cuda(*args)


# ---- device= and pin_memory= on the factories ----

_FACTORIES = {
    "zeros": lambda m, **kw: m.zeros(2, 3, **kw),
    "ones": lambda m, **kw: m.ones((2,), **kw),
    "empty": lambda m, **kw: m.empty(2, **kw).zero_(),
    "full": lambda m, **kw: m.full((2,), 1.5, **kw),
    "zeros_like": lambda m, **kw: m.zeros_like(m.ones(2), **kw),
    "ones_like": lambda m, **kw: m.ones_like(m.ones(2), **kw),
    "full_like": lambda m, **kw: m.full_like(m.ones(2), 7, **kw),
    "arange": lambda m, **kw: m.arange(0, 5, 2, **kw),
    "linspace": lambda m, **kw: m.linspace(0, 1, 3, **kw),
    "eye": lambda m, **kw: m.eye(2, **kw),
    "rand": lambda m, **kw: m.rand(2, **kw).mul(0),
    "randn": lambda m, **kw: m.randn(2, **kw).mul(0),
    "randint": lambda m, **kw: m.randint(0, 1, (3,), **kw),
    "tensor": lambda m, **kw: m.tensor([1.0, 2.0], **kw),
}


@pytest.mark.parametrize("name", sorted(_FACTORIES))
def test_factories_take_device_cpu(name):
    torch = pytest.importorskip("torch")
    make = _FACTORIES[name]
    for dev in ("cpu", bp.device("cpu"), None):
        ours = make(bp, device=dev)
        theirs = make(torch, device=None if dev is None else str(dev))
        assert ours.device == bp.device("cpu")
        assert ours.tolist() == theirs.tolist()
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]


@pytest.mark.parametrize("name", sorted(_FACTORIES))
def test_factories_refuse_other_devices(name):
    with pytest.raises(RuntimeError, match=rf"^\[{name}\] device 'cuda' is not available"):
        _FACTORIES[name](bp, device="cuda")


@pytest.mark.parametrize("name", ["empty", "rand", "randn", "tensor"])
def test_pin_memory_raises_without_an_accelerator_as_torch(name):
    torch = pytest.importorskip("torch")
    make = _FACTORIES[name]
    assert make(bp, pin_memory=False).tolist() == make(torch, pin_memory=False).tolist()
    with pytest.raises(RuntimeError):
        make(torch, pin_memory=True)
    with pytest.raises(RuntimeError, match=rf"^\[{name}\] pin_memory=True"):
        make(bp, pin_memory=True)


# ---- bfloat16 / float16: names only ----


def test_reserved_dtype_names_print_like_torch():
    torch = pytest.importorskip("torch")
    for name in ("bfloat16", "float16", "half"):
        assert repr(getattr(bp, name)) == repr(getattr(torch, name)).replace("torch", "bprop")
        assert str(getattr(bp, name)) == repr(getattr(bp, name))
    assert bp.half is bp.float16
    assert pickle.loads(pickle.dumps(bp.bfloat16)) is bp.bfloat16
    assert bp.bfloat16.is_floating_point and bp.float16.itemsize == 2


_UNSUPPORTED = r"dtype {} is not supported yet \(bprop has float32, float64, int64, bool\)"


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_reserved_dtypes_raise_wherever_consumed(name):
    dtype = getattr(bp, name)
    message = _UNSUPPORTED.format(name)
    x = bp.ones(2)
    uses = [
        ("zeros", lambda: bp.zeros(2, dtype=dtype)),
        ("full", lambda: bp.full((2,), 1.0, dtype=dtype)),
        ("zeros_like", lambda: bp.zeros_like(x, dtype=dtype)),
        ("arange", lambda: bp.arange(3, dtype=dtype)),
        ("randn", lambda: bp.randn(2, dtype=dtype)),
        ("tensor", lambda: bp.tensor([1.0], dtype=dtype)),
        ("to", lambda: x.to(dtype)),
        ("to", lambda: x.to("cpu", dtype)),
        ("to", lambda: x.to(dtype=dtype)),
        ("new_zeros", lambda: x.new_zeros(2, dtype=dtype)),
        ("type", lambda: x.type(dtype)),
    ]
    for op, use in uses:
        with pytest.raises(TypeError, match=rf"^\[{op}\] {message}"):
            use()
    assert x.tolist() == [1.0, 1.0]


def test_half_and_bfloat16_methods_raise():
    x = bp.ones(2)
    with pytest.raises(TypeError, match=r"^\[half\] dtype float16 is not supported yet"):
        x.half()
    with pytest.raises(TypeError, match=r"^\[bfloat16\] dtype bfloat16 is not supported yet"):
        x.bfloat16()
    with pytest.raises(TypeError, match=r"^\[type\] dtype float16"):
        x.type("torch.HalfTensor")


# ---- bprop.cuda, accelerator, backends, onnx ----


def test_cuda_namespace_reports_no_cuda_like_torchs_cpu_build():
    torch = pytest.importorskip("torch")
    assert bp.cuda.is_available() is torch.cuda.is_available() is False
    assert bp.cuda.device_count() == torch.cuda.device_count() == 0
    assert bp.cuda.is_bf16_supported() is False
    device = bp.device("cuda" if bp.cuda.is_available() else "cpu")  # the usual idiom
    assert bp.zeros(2, device=device).device == device
    bp.manual_seed(3)
    a = bp.rand(3)
    bp.manual_seed(3)
    for seed_call in (bp.cuda.manual_seed, bp.cuda.manual_seed_all):
        assert seed_call(123) is None  # no CUDA generator: bprop's own is untouched
    bp.cuda.synchronize()
    bp.cuda.empty_cache()
    assert bp.rand(3).tolist() == a.tolist()
    for call in (bp.cuda.current_device, lambda: bp.cuda.set_device(0)):
        with pytest.raises(RuntimeError, match="CPU only"):
            call()


def test_accelerator_backends_onnx():
    torch = pytest.importorskip("torch")
    import bprop.backends.cudnn
    import bprop.cuda.amp  # noqa: F401  (the submodule paths programs import)
    import bprop.onnx  # noqa: F401

    assert bp.accelerator.is_available() is torch.accelerator.is_available() is False
    assert bp.accelerator.current_accelerator() is torch.accelerator.current_accelerator()
    assert bp.accelerator.device_count() == 0
    assert bp.backends.mps.is_available() is torch.backends.mps.is_available() is False
    for module, name in [
        (bp.backends.cuda.matmul, "allow_tf32"),
        (bp.backends.cudnn, "allow_tf32"),
        (bp.backends.cudnn, "benchmark"),
        (bp.backends.cudnn, "deterministic"),
        (bp.backends.cudnn, "enabled"),
    ]:
        torch_module = {bp.backends.cudnn: torch.backends.cudnn}.get(
            module, torch.backends.cuda.matmul
        )
        assert getattr(module, name) == getattr(torch_module, name), name
        before = getattr(module, name)
        setattr(module, name, not before)
        assert getattr(module, name) is (not before)
        setattr(module, name, before)
    with pytest.raises(NotImplementedError, match=r"^\[onnx.export\] .*state_dict"):
        bp.onnx.export(bp.nn.Linear(2, 2), (bp.zeros(1, 2),), "model.onnx")
    assert bp.onnx.is_in_onnx_export() is False


# ---- AMP: GradScaler and autocast as PyTorch's disabled forms ----


def _sgd_step(scaler, lib):
    lib.manual_seed(0)
    w = lib.tensor([1.0, -2.0], requires_grad=True)
    opt = lib.optim.SGD([w], lr=0.1)
    loss = (w * w).sum()
    scaled = scaler.scale(loss)
    scaled.backward()
    scaler.unscale_(opt)
    scaler.step(opt)
    scaler.update()
    return scaled.item(), w.tolist(), scaler.get_scale(), scaler.is_enabled(), scaler.state_dict()


def test_disabled_grad_scaler_passes_through_like_torch():
    torch = pytest.importorskip("torch")
    for ours, theirs in [
        (bp.amp.GradScaler(enabled=False), torch.amp.GradScaler(enabled=False)),
        (bp.cuda.amp.GradScaler(enabled=False), torch.amp.GradScaler("cuda", enabled=False)),
    ]:
        assert _sgd_step(ours, bp) == _sgd_step(theirs, torch)
    scaler = bp.amp.GradScaler(enabled=False)
    loss = bp.ones(1, requires_grad=True).sum()
    assert scaler.scale(loss) is loss
    pair = [loss, loss * 2]
    assert scaler.scale(pair) is pair
    scaler.load_state_dict({})
    assert scaler.get_growth_interval() == 2000
    scaler.set_growth_factor(3.0)
    assert scaler.get_growth_factor() == 3.0


def test_enabled_grad_scaler_warns_and_disables_like_torch_without_cuda():
    torch = pytest.importorskip("torch")
    with pytest.warns(UserWarning, match="Disabling"):
        theirs = torch.amp.GradScaler("cuda")
    for make in (bp.amp.GradScaler, bp.cuda.amp.GradScaler):
        with pytest.warns(UserWarning, match="CPU only.*Disabling"):
            ours = make()
        assert ours.is_enabled() is theirs.is_enabled() is False
        assert ours.get_scale() == theirs.get_scale() == 1.0
        assert _sgd_step(ours, bp)[:2] == _sgd_step(theirs, torch)[:2]


def test_autocast_disabled_is_a_no_op_context_and_decorator():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    for ctx in (
        bp.autocast("cpu", enabled=False),
        bp.autocast(device_type="cpu", dtype=bp.bfloat16, enabled=False),
        bp.amp.autocast("cuda", enabled=False),
        bp.cuda.amp.autocast(enabled=False),
    ):
        with ctx:
            y = x * 2
        assert y.dtype == bp.float32 and y.requires_grad

    @bp.autocast("cpu", enabled=False)
    def double(t):
        """Doubles t."""
        return t * 2

    assert double(x).tolist() == [2.0, 4.0] and double.__doc__ == "Doubles t."
    assert bp.autocast is bp.amp.autocast


def test_autocast_cuda_warns_and_disables_like_torch():
    torch = pytest.importorskip("torch")
    with pytest.warns(UserWarning, match="Disabling autocast"):
        torch.autocast("cuda")
    with pytest.warns(UserWarning, match="CUDA is not available.*Disabling autocast"):
        ctx = bp.autocast("cuda", dtype=bp.float16)
    with ctx:
        assert (bp.ones(2) * 2).dtype == bp.float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with bp.cuda.amp.autocast():
            pass


def test_autocast_enabled_on_cpu_is_not_supported_yet():
    for args in [("cpu",), ("cpu", bp.bfloat16), ("mps",)]:
        with pytest.raises(NotImplementedError, match=r"^\[autocast\] .*not supported yet"):
            bp.autocast(*args)
    with pytest.raises(RuntimeError, match=r"^\[autocast\] Expected one of"):
        bp.autocast("gpu", enabled=False)
    assert bp.amp.is_autocast_available("cpu") is False


def test_float32_matmul_precision_like_torch():
    torch = pytest.importorskip("torch")
    assert bp.get_float32_matmul_precision() == torch.get_float32_matmul_precision() == "highest"
    try:
        for precision in ("high", "medium", "highest"):
            torch.set_float32_matmul_precision(precision)
            bp.set_float32_matmul_precision(precision)
            assert bp.get_float32_matmul_precision() == torch.get_float32_matmul_precision()
            assert bp.backends.cuda.matmul.allow_tf32 == torch.backends.cuda.matmul.allow_tf32
        with pytest.warns(UserWarning, match="no effect"):
            bp.set_float32_matmul_precision("fastest")
        assert bp.get_float32_matmul_precision() == "highest"
    finally:
        torch.set_float32_matmul_precision("highest")
        bp.set_float32_matmul_precision("highest")
