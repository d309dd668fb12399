"""Devices: ``bprop.device``, the checks behind every ``device=`` argument, and ``to(...)``.

bprop computes on the CPU only. Programs written for PyTorch still name devices
(``torch.device('cuda' if torch.cuda.is_available() else 'cpu')``, ``x.to(device)``,
``torch.zeros(3, device=device)``), so every device name PyTorch knows is a valid
``bprop.device``; a device other than the CPU raises a RuntimeError saying so the moment
something would have to use it. The dtype names bprop does not have yet (``bfloat16``,
``float16``/``half``) live here too, with the check that refuses them wherever a dtype is
consumed.
"""

from __future__ import annotations

import re
import typing

from . import _core

__all__ = ["device", "bfloat16", "float16", "half"]

# PyTorch's device types (torch 2.13, in its order), so the same strings parse.
_DEVICE_TYPES = (
    "cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga",
    "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone",
)  # fmt: skip
_DEVICE_STRING = re.compile(r"([a-zA-Z_]+)(?::(0|[1-9][0-9]*))?")


class device:  # noqa: N801  (PyTorch's name)
    """A device name, as ``torch.device``: ``device('cpu')``, ``device('cuda:0')``,
    ``device('cuda', 0)`` or ``device(other_device)``.

    Every device type PyTorch knows is a valid name, but bprop computes on the CPU only:
    creating a tensor on, or moving one to, any other device raises a RuntimeError.
    ``type`` is the device type ('cpu'), ``index`` its index or None."""

    __slots__ = ("_type", "_index")

    _type: str
    _index: int | None

    def __init__(self, type: str | device, index: int | None = None) -> None:  # noqa: A002
        if isinstance(type, device):
            if index is not None:
                raise TypeError("[device] a device and an index were both given")
            self._type, self._index = type._type, type._index
            return
        if isinstance(type, bool) or not isinstance(type, str):
            if isinstance(type, int):
                raise RuntimeError(
                    f"[device] device index {type} names an accelerator, but bprop runs on "
                    "the CPU only"
                )
            raise TypeError(f"[device] expected a device string, got {type!r}")
        match = _DEVICE_STRING.fullmatch(type)
        if match is None:
            raise RuntimeError(f"[device] Invalid device string: {type!r}")
        if match.group(1) not in _DEVICE_TYPES:
            raise RuntimeError(
                f"[device] Expected one of {', '.join(_DEVICE_TYPES)} device type at start of "
                f"device string: {type}"
            )
        name, parsed = match.group(1), match.group(2)
        if parsed is not None:
            if index is not None:
                raise RuntimeError(
                    "[device] type (string) must not include an index because index was passed "
                    f"explicitly: {type}"
                )
            index = int(parsed)
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, int):
                raise TypeError(f"[device] index must be an int, got {index!r}")
            if index < 0:
                raise RuntimeError("[device] Device index must not be negative")
        self._type, self._index = name, index

    @property
    def type(self) -> str:
        """The device type: 'cpu', 'cuda', 'mps', ..."""
        return self._type

    @property
    def index(self) -> int | None:
        """The device index, or None when the name gave none."""
        return self._index

    def __repr__(self) -> str:
        if self._index is None:
            return f"device(type={self._type!r})"
        return f"device(type={self._type!r}, index={self._index})"

    def __str__(self) -> str:
        return self._type if self._index is None else f"{self._type}:{self._index}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, device):
            return NotImplemented
        return (self._type, self._index) == (other._type, other._index)

    def __hash__(self) -> int:
        return hash((self._type, self._index))

    def __reduce__(self) -> tuple:
        if self._index is None:
            return (device, (self._type,))
        return (device, (self._type, self._index))

    def __enter__(self) -> device:
        """``with device('cpu'):`` is allowed (bprop's factories make CPU tensors anyway)."""
        check_device("device", self)
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _cpu_only(op: str, what: object) -> RuntimeError:
    return RuntimeError(
        f"[{op}] device '{what}' is not available: bprop runs on the CPU only "
        "(use 'cpu', or check bprop.cuda.is_available() first)"
    )


def check_device(op: str, dev: typing.Any) -> None:
    """Passes None, 'cpu' and bprop.device('cpu') (with any index); raises ``[op] ...``.

    Every ``device=`` argument goes through this: a RuntimeError for a valid device that is not
    the CPU ('cuda', 'mps', ...), the error ``bprop.device`` raises for a malformed name."""
    if dev is None:
        return
    if isinstance(dev, device):
        parsed = dev
    elif isinstance(dev, str):
        try:
            parsed = device(dev)
        except RuntimeError as error:
            raise RuntimeError(f"[{op}] " + str(error).removeprefix("[device] ")) from None
    elif isinstance(dev, int) and not isinstance(dev, bool):
        raise _cpu_only(op, f"cuda:{dev}")
    else:
        raise TypeError(f"[{op}] device must be a str or bprop.device, got {dev!r}")
    if parsed.type != "cpu":
        raise _cpu_only(op, parsed)


class _UnsupportedDType:
    """A PyTorch dtype name bprop does not have yet (bfloat16, float16): it prints as PyTorch's
    does, and every use as a dtype raises a TypeError (see check_dtype)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"bprop.{self._name}"

    __str__ = __repr__

    @property
    def is_floating_point(self) -> bool:
        """True: both names bprop reserves are floating-point types."""
        return True

    @property
    def itemsize(self) -> int:
        """The size of one element in bytes (2)."""
        return 2

    def __reduce__(self) -> str:
        return self._name  # pickles as the module attribute bprop.<name>


bfloat16 = _UnsupportedDType("bfloat16")
float16 = _UnsupportedDType("float16")
half = float16
_UnsupportedDType.__module__ = "bprop"


def unsupported_dtype_error(op: str, dtype: _UnsupportedDType) -> TypeError:
    """The TypeError for a PyTorch dtype bprop does not have yet."""
    return TypeError(
        f"[{op}] dtype {dtype._name} is not supported yet (bprop has float32, float64, int64, bool)"
    )


def check_dtype(op: str, dtype: typing.Any) -> _core.dtype | None:
    """dtype when it is None or a bprop dtype; a TypeError naming op for anything else
    (bfloat16 and float16 included: they are names only, not yet dtypes)."""
    if dtype is None or isinstance(dtype, _core.dtype):
        return dtype
    if isinstance(dtype, _UnsupportedDType):
        raise unsupported_dtype_error(op, dtype)
    raise TypeError(f"[{op}] dtype must be a bprop dtype, got {dtype!r}")


def _is_dtype(value: object) -> bool:
    return isinstance(value, (_core.dtype, _UnsupportedDType))


def _is_device(value: object) -> bool:
    return isinstance(value, (str, device)) or (
        isinstance(value, int) and not isinstance(value, bool)
    )


_TO_KEYWORDS = frozenset({"device", "dtype", "non_blocking", "copy", "memory_format"})


def parse_to_args(
    op: str, *args: typing.Any, **kwargs: typing.Any
) -> tuple[_core.dtype | None, bool]:
    """The dtype (None: unchanged) and copy flag a PyTorch ``to(...)`` call asks for.

    The forms of ``Tensor.to``: ``to(dtype, non_blocking=False, copy=False)``,
    ``to(device=None, dtype=None, non_blocking=False, copy=False)`` and
    ``to(other, non_blocking=False, copy=False)`` (other's dtype), each with the keyword
    ``memory_format=`` (accepted; bprop's tensors are row-major). The device is checked with
    check_device (only the CPU passes); non_blocking has no effect on the CPU."""
    from ._core import Tensor

    unknown = set(kwargs) - _TO_KEYWORDS
    if unknown:
        raise TypeError(f"[{op}] unexpected keyword argument {sorted(unknown)[0]!r}")
    rest = list(args)
    dev: typing.Any = kwargs.pop("device", None)
    dtype: typing.Any = kwargs.pop("dtype", None)
    has_device_kw = dev is not None
    has_dtype_kw = dtype is not None
    if rest and isinstance(rest[0], Tensor):
        if has_device_kw or has_dtype_kw:
            raise TypeError(f"[{op}] got a tensor and device= or dtype= together")
        other = rest.pop(0)
        dtype = other.dtype
    elif rest and _is_dtype(rest[0]):
        if has_device_kw or has_dtype_kw:
            raise TypeError(f"[{op}] got a dtype and device= or dtype= together")
        dtype = rest.pop(0)
    elif rest and (rest[0] is None or _is_device(rest[0])):
        if has_device_kw:
            raise TypeError(f"[{op}] got the device both positionally and as device=")
        dev = rest.pop(0)
        if rest and (rest[0] is None or _is_dtype(rest[0])):
            if has_dtype_kw:
                raise TypeError(f"[{op}] got the dtype both positionally and as dtype=")
            dtype = rest.pop(0)
    flags = {"non_blocking": False, "copy": False}
    for name in ("non_blocking", "copy"):
        if rest:
            if name in kwargs:
                raise TypeError(f"[{op}] got {name} both positionally and as a keyword")
            flags[name] = rest.pop(0)
        elif name in kwargs:
            flags[name] = kwargs.pop(name)
    if rest:
        raise TypeError(
            f"[{op}] invalid arguments {args!r}: expected to(dtype), to(device, dtype) or "
            "to(tensor), each optionally followed by non_blocking and copy"
        )
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise TypeError(f"[{op}] {name} must be a bool, got {value!r}")
    if not (dtype is None or _is_dtype(dtype)):
        raise TypeError(f"[{op}] dtype must be a bprop dtype, got {dtype!r}")
    if not (dev is None or _is_device(dev)):
        raise TypeError(f"[{op}] device must be a str or bprop.device, got {dev!r}")
    check_device(op, dev)
    return check_dtype(op, dtype), flags["copy"]
