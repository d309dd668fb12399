"""Zero-copy interop: numpy (from_numpy, .numpy(), np.asarray, the buffer protocol) and DLPack
(__dlpack__, __dlpack_device__, bp.from_dlpack) with numpy, PyTorch and JAX.

Sharing is proven by writing through one side and reading the other; lifetime by deleting the
producer (and, where it takes weak references, watching it stay alive exactly as long as the
consumer does)."""

import ctypes
import gc
import importlib.util
import subprocess
import sys
import weakref

import bprop as bp
import numpy as np
import pytest

DTYPES = [np.float32, np.float64, np.int64, np.bool_]


def _values(shape, dtype):
    n = int(np.prod(shape))
    data = np.arange(n) % 2 == 0 if dtype is np.bool_ else np.arange(n) - 3
    return data.astype(dtype).reshape(shape)


def _contiguous(dtype):
    return _values((3, 4), dtype)


def _transposed(dtype):
    return _values((3, 4), dtype).T


def _sliced(dtype):
    return _values((4, 6), dtype)[1::2, ::3]


def _broadcast(dtype):
    # Writable stride 0 (np.broadcast_to is read-only; that case is tested separately).
    row = _values((4,), dtype)
    return np.lib.stride_tricks.as_strided(row, shape=(3, 4), strides=(0, row.itemsize))


def _reversed(dtype):
    return _values((5,), dtype)[::-1]


def _zero_size(dtype):
    return _values((0, 3), dtype)


def _zero_d(dtype):
    return _values((), dtype)


LAYOUTS = [_contiguous, _transposed, _sliced, _broadcast, _reversed, _zero_size, _zero_d]
# DLPack carries negative strides, but torch.from_dlpack aborts the process on them.
TORCH_LAYOUTS = [f for f in LAYOUTS if f is not _reversed]


def _flip_first(array):
    """Writes a new value into the first element through `array` (any dtype, any layout)."""
    index = (0,) * array.ndim
    new = (not array[index]) if array.dtype == np.bool_ else array[index] + 100
    array[index] = new
    return new


def _capsule_name(capsule):
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype = ctypes.c_char_p
    get_name.argtypes = [ctypes.py_object]
    return get_name(capsule).decode()


# ---- numpy: from_numpy, .numpy(), np.asarray, memoryview ----


# How a source array becomes a tensor, and the ways back to numpy: every way must share.
ROUND_TRIPS = {
    "numpy": (bp.from_numpy, lambda t: [t.numpy(), np.asarray(t), np.asarray(memoryview(t))]),
    "dlpack": (bp.from_dlpack, lambda t: [np.from_dlpack(t)]),
}


@pytest.mark.parametrize("protocol", list(ROUND_TRIPS))
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_shares_memory(dtype, layout, protocol):
    share, exports = ROUND_TRIPS[protocol]
    source = layout(dtype)
    t = share(source)
    assert t.shape == source.shape and t.dtype.itemsize == source.itemsize
    np.testing.assert_array_equal(t.numpy(), source)
    for back in exports(t):
        assert back.dtype == source.dtype and back.shape == source.shape
        np.testing.assert_array_equal(back, source)
        assert back.strides == source.strides
        if source.size:
            assert np.shares_memory(back, source)
            new = _flip_first(back)
            assert source[(0,) * source.ndim] == new
            assert t[(0,) * t.ndim].item() == new


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_of_a_bprop_view_shares_and_keeps_its_strides(dtype):
    t = bp.tensor(_values((4, 6), dtype))
    view = t.T[::2]
    array = view.numpy()
    assert array.strides == tuple(s * t.dtype.itemsize for s in view.stride())
    np.testing.assert_array_equal(array, t.numpy().T[::2])
    _flip_first(array)
    assert t[0, 0].item() == array[0, 0]


def test_memoryview_exposes_format_shape_strides_and_is_writable():
    formats = {bp.float32: "f", bp.float64: "d", bp.bool: "?"}
    for dtype, fmt in formats.items():
        m = memoryview(bp.zeros(2, 3, dtype=dtype).T)
        assert (m.format, m.shape, m.readonly) == (fmt, (3, 2), False)
        assert m.strides == (m.itemsize, 3 * m.itemsize)
    m = memoryview(bp.zeros(2, 3, dtype=bp.int64))
    assert m.format in ("q", "l") and m.itemsize == 8
    t = bp.zeros(4)
    memoryview(t)[1] = 5.0
    assert t.tolist() == [0.0, 5.0, 0.0, 0.0]


def test_memoryview_and_numpy_keep_the_storage_alive():
    t = bp.arange(6.0).reshape(2, 3)
    m, array = memoryview(t), t.numpy()
    del t
    gc.collect()
    assert m.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    np.testing.assert_array_equal(array, np.arange(6.0).reshape(2, 3))


def test_array_protocol_honours_copy():
    t = bp.tensor([1.0, 2.0, 3.0])
    assert np.shares_memory(np.asarray(t), t.numpy())
    assert np.shares_memory(np.asarray(t, copy=False), t.numpy())
    assert not np.shares_memory(np.array(t, copy=True), t.numpy())
    assert np.shares_memory(t.__array__(copy=False), t.numpy())
    assert not np.shares_memory(t.__array__(copy=True), t.numpy())
    assert np.shares_memory(t.__array__(np.float32, copy=False), t.numpy())
    converted = t.__array__(np.float64)
    assert converted.dtype == np.float64 and converted.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="copy=False"):
        t.__array__(np.float64, copy=False)
    with pytest.raises(ValueError):
        np.asarray(t, dtype=np.float64, copy=False)


def test_read_only_numpy_sources():
    source = np.arange(4.0)
    source.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        bp.from_numpy(source)
    for t in (bp.tensor(source), bp.from_dlpack(source)):  # copies, never a writable alias
        assert t.tolist() == [0.0, 1.0, 2.0, 3.0]
        assert not np.shares_memory(t.numpy(), source)
        t.add_(1.0)
        assert source.tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="read-only"):
        bp.from_dlpack(source, copy=False)
    broadcast = np.broadcast_to(np.arange(3.0), (2, 3))  # read-only with stride 0
    t = bp.from_dlpack(broadcast)
    assert t.tolist() == broadcast.tolist()
    assert not np.shares_memory(t.numpy(), broadcast)


# ---- DLPack with numpy ----


# (The round trip through np.from_dlpack is test_round_trip_shares_memory's "dlpack".)


def test_dlpack_device_and_capsule_names():
    t = bp.ones(3)
    assert t.__dlpack_device__() == (1, 0)
    assert _capsule_name(t.__dlpack__()) == "dltensor"
    assert _capsule_name(t.__dlpack__(max_version=(0, 8))) == "dltensor"
    capsule = t.__dlpack__(max_version=(1, 0), dl_device=(1, 0))
    assert _capsule_name(capsule) == "dltensor_versioned"
    bp.from_dlpack(capsule)
    assert _capsule_name(capsule) == "used_dltensor_versioned"
    capsule = t.__dlpack__()
    bp.from_dlpack(capsule)
    assert _capsule_name(capsule) == "used_dltensor"


def test_dlpack_copy_argument():
    t = bp.zeros(3)
    assert not np.shares_memory(np.from_dlpack(t, copy=True), t.numpy())
    assert np.shares_memory(np.from_dlpack(t, copy=False), t.numpy())
    source = np.zeros(3)
    assert not np.shares_memory(bp.from_dlpack(source, copy=True).numpy(), source)
    assert np.shares_memory(bp.from_dlpack(source, copy=False).numpy(), source)
    assert np.shares_memory(bp.from_dlpack(bp.from_numpy(source)).numpy(), source)


def test_dlpack_misaligned_source_is_copied_or_refused():
    raw = np.arange(5.0).tobytes()
    buffer = bytearray(b"\0" + raw)
    source = np.frombuffer(buffer, dtype=np.float64, offset=1, count=5)
    assert not source.flags.aligned
    t = bp.from_dlpack(source)
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="aligned"):
        bp.from_dlpack(source, copy=False)


def test_dlpack_keeps_the_producer_alive():
    source = np.arange(6.0)
    alive = weakref.ref(source)
    t = bp.from_dlpack(source)
    del source
    gc.collect()
    assert alive() is not None
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    view = t[::2]
    del t
    gc.collect()
    assert alive() is not None and view.tolist() == [0.0, 2.0, 4.0]
    del view
    gc.collect()
    assert alive() is None  # the deleter ran


@pytest.mark.parametrize("versioned", [False, True])
def test_unconsumed_capsule_calls_the_deleter(versioned):
    source = np.arange(3.0)
    alive = weakref.ref(source)
    t = bp.from_numpy(source)
    capsule = t.__dlpack__(max_version=(1, 0) if versioned else None)
    del source, t
    gc.collect()
    assert alive() is not None  # the capsule holds the storage
    del capsule
    gc.collect()
    assert alive() is None


def test_exported_tensor_outlives_the_bprop_tensor():
    t = bp.arange(4.0)
    alive = weakref.ref(t)
    array = np.from_dlpack(t)
    del t
    gc.collect()
    assert alive() is None  # the Python object goes; the storage stays with the export
    assert array.tolist() == [0.0, 1.0, 2.0, 3.0]


# ---- errors ----


def test_tensor_that_requires_grad_is_not_exported():
    x = bp.ones(3, requires_grad=True)
    # BufferError from __dlpack__, as PyTorch raises; RuntimeError from numpy(), as PyTorch too.
    with pytest.raises(BufferError, match=r"detach\(\)"):
        x.__dlpack__()
    with pytest.raises(BufferError, match=r"detach\(\)"):
        np.from_dlpack(x)
    with pytest.raises(RuntimeError, match=r"detach\(\)"):
        x.numpy()
    with pytest.raises(BufferError) as info:
        memoryview(x)
    assert "detach()" in str(info.value.__cause__)
    assert np.from_dlpack(x.detach()).tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.uint8, np.complex64, np.int8])
def test_unsupported_dtype_names_it(dtype):
    with pytest.raises(TypeError, match=np.dtype(dtype).name):
        bp.from_dlpack(np.zeros(3, dtype=dtype))


def test_capsule_consumed_twice():
    capsule = bp.ones(2).__dlpack__(max_version=(1, 0))
    assert bp.from_dlpack(capsule).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="already consumed"):
        bp.from_dlpack(capsule)
    capsule = np.ones(2).__dlpack__()
    bp.from_dlpack(capsule)
    with pytest.raises(ValueError, match="already consumed"):
        bp.from_dlpack(capsule)


def test_failed_import_leaves_the_capsule_to_its_destructor():
    source = np.zeros(2, dtype=np.int32)
    alive = weakref.ref(source)
    capsule = source.__dlpack__()
    del source
    with pytest.raises(TypeError, match="int32"):
        bp.from_dlpack(capsule)
    assert _capsule_name(capsule) == "dltensor"
    del capsule
    gc.collect()
    assert alive() is None


def test_non_cpu_devices_and_bad_arguments():
    class OnGpu:
        def __dlpack_device__(self):
            return (2, 0)

        def __dlpack__(self, **kwargs):
            raise AssertionError("must not be called")

    with pytest.raises(BufferError, match="CPU"):
        bp.from_dlpack(OnGpu())
    with pytest.raises(TypeError, match="__dlpack__"):
        bp.from_dlpack([1.0, 2.0])
    with pytest.raises(ValueError, match="device"):
        bp.from_dlpack(np.zeros(2), device="cuda")
    t = bp.ones(2)
    with pytest.raises(BufferError, match="stream"):
        t.__dlpack__(stream=1)
    with pytest.raises(BufferError, match="CPU"):
        t.__dlpack__(dl_device=(2, 0))


# ---- PyTorch ----


def _torch_layouts(torch, dtype):
    base = torch.from_numpy(_values((4, 6), dtype))
    return {
        "contiguous": base,
        "transposed": base.t(),
        "sliced": base[1::2, ::3],
        "broadcast": base[0].expand(3, 6),
        "zero_size": base[:0],
        "zero_d": base[1, 1],
    }


@pytest.mark.parametrize("layout", TORCH_LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dlpack_bprop_to_torch(dtype, layout):
    torch = pytest.importorskip("torch")
    source = layout(dtype)
    t = bp.from_numpy(source)
    x = torch.from_dlpack(t)
    assert tuple(x.shape) == t.shape and tuple(x.stride()) == t.stride()
    np.testing.assert_array_equal(x.numpy(), source)
    if source.size:
        new = _flip_first(x.numpy())
        assert t[(0,) * t.ndim].item() == new
        assert source[(0,) * source.ndim] == new


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced", "broadcast",
                                    "zero_size", "zero_d"])  # fmt: skip
@pytest.mark.parametrize("dtype", DTYPES)
def test_dlpack_torch_to_bprop(dtype, layout):
    torch = pytest.importorskip("torch")
    x = _torch_layouts(torch, dtype)[layout]
    t = bp.from_dlpack(x)
    assert t.shape == tuple(x.shape) and t.stride() == tuple(x.stride())
    np.testing.assert_array_equal(t.numpy(), x.numpy())
    if x.numel():
        new = _flip_first(t.numpy())
        assert x.numpy()[(0,) * x.ndim] == new
    # and back to torch, still the same memory
    y = torch.from_dlpack(t)
    if x.numel():
        assert y.data_ptr() == x.data_ptr()


def test_torch_lifetime_and_errors():
    torch = pytest.importorskip("torch")
    x = torch.arange(4.0)
    alive = weakref.ref(x)
    t = bp.from_dlpack(x)
    del x
    gc.collect()
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0]
    del t
    gc.collect()
    assert alive() is None
    y = torch.from_dlpack(bp.arange(3.0))
    gc.collect()
    assert y.tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(TypeError, match="int32"):
        bp.from_dlpack(torch.zeros(2, dtype=torch.int32))
    with pytest.raises(TypeError, match="float16"):
        bp.from_dlpack(torch.zeros(2, dtype=torch.float16))
    with pytest.raises(BufferError):  # torch refuses to export what requires grad
        bp.from_dlpack(torch.ones(2, requires_grad=True))
    with pytest.raises(BufferError, match=r"detach\(\)"):
        torch.from_dlpack(bp.ones(2, requires_grad=True))


# ---- JAX ----

# In a child process: once JAX has started its threads it warns on every os.fork(), which
# other tests do (and warnings are errors here).
_JAX_CHECKS = """
import numpy as np
import jax.numpy as jnp
import bprop as bp

for source in (jnp.arange(6.0, dtype=jnp.float32).reshape(2, 3), jnp.array([True, False])):
    t = bp.from_dlpack(source)
    np.testing.assert_array_equal(t.numpy(), np.asarray(source))
# JAX imports compact layouts only (transpositions included), so no slice with a step.
for t in (bp.arange(6.0).reshape(2, 3), bp.tensor([True, False]), bp.arange(6.0).reshape(2, 3).T):
    np.testing.assert_array_equal(np.asarray(jnp.from_dlpack(t)), t.numpy())
try:
    bp.from_dlpack(jnp.arange(3, dtype=jnp.int32))
except TypeError as error:
    assert "int32" in str(error), error
else:
    raise AssertionError("int32 imported")
print("ok")
"""


def test_dlpack_with_jax():
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    result = subprocess.run(
        [sys.executable, "-c", _JAX_CHECKS], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
