"""Random sampling: ``bprop.Generator``, ``randperm`` and ``multinomial``.

Without ``generator=`` every draw comes from bprop's global C++ generator, so
``bprop.manual_seed(s)`` makes a program reproducible. A ``bprop.Generator`` is a separate
stream of random numbers (numpy's PCG64, seeded by ``manual_seed``), for code that keeps its
own: a DataLoader's shuffling, ``random_split``. Draws from a Generator are made in Python, so a
step captured by ``bp.compile`` freezes them at their recorded values; the global generator's
draws are made anew on every replay.

The factories of bprop/_creation.py (``rand``, ``randn``, ``randint``) take ``generator=`` too:
they call ``uniform``, ``normal`` and ``integers`` here.
"""

from __future__ import annotations

import os
import typing

import numpy as np

from . import _core
from ._core import Tensor
from ._device import check_device, check_dtype, device
from ._tensor import function_and_method

__all__ = ["Generator", "randperm", "multinomial"]

_DEFAULT_SEED = 67280421310721  # torch.Generator().initial_seed()
_UINT64 = 1 << 64
_STATE_WORDS = 7  # PCG64 state (2 words), increment (2), the buffered uint32 (2), initial seed


class Generator:
    """A stream of random numbers of its own, as ``torch.Generator``:
    ``g = bprop.Generator().manual_seed(0)``, then ``bprop.randperm(10, generator=g)``.

    Pass it as ``generator=`` to ``randperm``, ``multinomial``, ``rand``, ``randn`` and
    ``randint``. It starts from PyTorch's default seed (67280421310721); ``manual_seed(s)``
    reseeds and returns the generator, ``seed()`` reseeds from the operating system's entropy,
    and ``get_state()`` / ``set_state()`` save and restore its position (as an int64 tensor).
    The numbers drawn are not PyTorch's: only the generator's own sequence is reproducible.
    ``device`` is accepted for PyTorch's sake and must be the CPU."""

    def __init__(self, device: str | device = "cpu") -> None:
        check_device("Generator", device)
        self._bits = np.random.PCG64(_DEFAULT_SEED)
        self._numpy = np.random.Generator(self._bits)
        self._initial_seed = _DEFAULT_SEED

    @property
    def device(self) -> device:
        """The device the generator draws for: always the CPU."""
        return device("cpu")

    def manual_seed(self, seed: int) -> Generator:
        """Restarts the stream from seed (an int; negative ones wrap modulo 2**64); returns
        the generator itself, so ``Generator().manual_seed(0)`` is one expression."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise RuntimeError(
                f"[manual_seed] manual_seed expected an int, got {type(seed).__name__}"
            )
        seed = int(seed)
        if not -(1 << 63) <= seed < _UINT64:
            raise ValueError(f"[manual_seed] seed {seed} does not fit in 64 bits")
        seed %= _UINT64
        self._bits = np.random.PCG64(seed)
        self._numpy = np.random.Generator(self._bits)
        self._initial_seed = seed
        return self

    def initial_seed(self) -> int:
        """The seed the stream was last started from."""
        return self._initial_seed

    def seed(self) -> int:
        """Restarts the stream from a seed taken from the operating system; returns it."""
        seed = int.from_bytes(os.urandom(8), "little")
        self.manual_seed(seed)
        return seed

    def get_state(self) -> Tensor:
        """The generator's position, as an int64 tensor for set_state."""
        state = self._bits.state
        words = []
        for value in (state["state"]["state"], state["state"]["inc"]):
            words += [value % _UINT64, value >> 64]
        words += [state["has_uint32"], state["uinteger"], self._initial_seed]
        signed = [w - _UINT64 if w >= 1 << 63 else w for w in words]
        return _core._tensor_from_numpy(np.array(signed, dtype=np.int64))

    def set_state(self, new_state: Tensor) -> Generator:
        """Returns to a position get_state() gave; returns the generator itself."""
        if not isinstance(new_state, Tensor) or new_state.dtype != _core.dtype.int64:
            raise TypeError(
                "[set_state] the state must be the int64 tensor get_state() returns, got "
                f"{getattr(new_state, 'dtype', type(new_state).__name__)}"
            )
        if tuple(new_state.shape) != (_STATE_WORDS,):
            raise RuntimeError(
                f"[set_state] the state must have shape ({_STATE_WORDS},), "
                f"got {tuple(new_state.shape)}"
            )
        w = [int(v) % _UINT64 for v in new_state.detach().numpy().tolist()]
        bits = np.random.PCG64()
        bits.state = {
            "bit_generator": "PCG64",
            "state": {"state": w[0] | (w[1] << 64), "inc": w[2] | (w[3] << 64)},
            "has_uint32": w[4],
            "uinteger": w[5],
        }
        self._bits, self._numpy, self._initial_seed = bits, np.random.Generator(bits), w[6]
        return self

    def __repr__(self) -> str:
        return f"<bprop.Generator object (initial_seed={self._initial_seed})>"


def _check_generator(op: str, generator: object) -> Generator | None:
    if generator is None or isinstance(generator, Generator):
        return generator
    raise TypeError(f"[{op}] generator must be a bprop.Generator, got {type(generator).__name__}")


def _from_numpy(array: np.ndarray, dtype: _core.dtype) -> Tensor:
    result = _core._tensor_from_numpy(np.ascontiguousarray(array))
    return result if result.dtype == dtype else _core._to_dtype(result, dtype)


def uniform(op: str, generator: Generator | None, shape: tuple, dtype: _core.dtype) -> Tensor:
    """Uniform on [0, 1): from the global generator, or from generator."""
    if _check_generator(op, generator) is None:
        return _core._rand(shape, dtype)
    if dtype not in (_core.dtype.float32, _core.dtype.float64):
        raise TypeError(f"[{op}] needs a floating point dtype, got {dtype.name}")
    values = generator._numpy.random(shape)
    if dtype == _core.dtype.float32:  # NOTE: rounding to float32 must not reach 1.0
        values = np.minimum(values.astype(np.float32), np.nextafter(np.float32(1), np.float32(0)))
    return _from_numpy(values, dtype)


def normal(op: str, generator: Generator | None, shape: tuple, dtype: _core.dtype) -> Tensor:
    """Standard normal: from the global generator, or from generator."""
    if _check_generator(op, generator) is None:
        return _core._randn(shape, dtype)
    if dtype not in (_core.dtype.float32, _core.dtype.float64):
        raise TypeError(f"[{op}] needs a floating point dtype, got {dtype.name}")
    return _from_numpy(generator._numpy.standard_normal(shape), dtype)


def integers(
    op: str, generator: Generator | None, low: int, high: int, shape: tuple, dtype: _core.dtype
) -> Tensor:
    """Integers in [low, high): from the global generator, or from generator."""
    if _check_generator(op, generator) is None:
        return _core._randint(low, high, shape, dtype)
    if high <= low:
        raise ValueError(f"[{op}] expects low < high, got low={low}, high={high}")
    return _from_numpy(generator._numpy.integers(low, high, size=shape, dtype=np.int64), dtype)


def randperm(
    n: int,
    *,
    generator: Generator | None = None,
    dtype: _core.dtype | None = None,
    device: str | device | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """A random permutation of 0, ..., n - 1 (int64 unless dtype says otherwise).

    Without generator it draws from bprop's global generator (``bprop.manual_seed``) and is
    capturable by ``bp.compile`` (a new permutation on every replay); with a
    ``bprop.Generator`` it is drawn in Python, and a capture freezes it."""
    check_device("randperm", device)
    dtype = check_dtype("randperm", dtype) or _core.dtype.int64
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"[randperm] n must be an int, got {type(n).__name__}")
    if n < 0:
        raise RuntimeError(f"[randperm] n must be non-negative, got {n}")
    if dtype == _core.dtype.bool:
        raise TypeError("[randperm] not implemented for dtype bool")
    if requires_grad and dtype not in (_core.dtype.float32, _core.dtype.float64):
        raise RuntimeError(
            f"[randperm] only floating point tensors can require gradients, got {dtype.name}"
        )
    if _check_generator("randperm", generator) is None:
        keys = _core._rand((int(n),), _core.dtype.float64)
        result = _core._argsort(keys, 0, False)  # a stable sort: a permutation even on ties
        if dtype != _core.dtype.int64:
            result = _core._to_dtype(result, dtype)
    else:
        result = _from_numpy(generator._numpy.permutation(int(n)).astype(np.int64), dtype)
    if requires_grad:
        result.requires_grad_(True)
    return result


_MAX_COMPARISONS = 1 << 22  # elements of one (samples x categories) comparison block


@function_and_method
def multinomial(
    input: Tensor,
    num_samples: int,
    replacement: bool = False,
    *,
    generator: typing.Any = None,
) -> Tensor:
    """num_samples category indices (int64) drawn from each row of input, whose non-negative
    weights need not sum to 1 (a 1-d input is one row, a 2-d one a row per distribution).

    With replacement each draw is independent; without it, a row's indices are distinct (the
    order is that of drawing). Draws come from bprop's global generator, or from generator.
    Not capturable by ``bp.compile``: it reads the weights to check them."""
    generator = _check_generator("multinomial", generator)
    if input.dtype not in (_core.dtype.float32, _core.dtype.float64):
        raise RuntimeError(
            f"[multinomial] only supports floating point input, got {input.dtype.name}"
        )
    if input.ndim not in (1, 2):
        raise RuntimeError(
            f"[multinomial] prob_dist must be 1 or 2 dim, got shape {tuple(input.shape)}"
        )
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)):
        raise TypeError(f"[multinomial] num_samples must be an int, got {num_samples!r}")
    num_samples = int(num_samples)
    categories = input.shape[-1]
    if num_samples <= 0:
        raise RuntimeError(f"[multinomial] cannot sample n_sample <= 0 samples, got {num_samples}")
    if not replacement and num_samples > categories:
        raise RuntimeError(
            f"[multinomial] cannot sample n_sample > prob_dist.size(-1) samples without "
            f"replacement: {num_samples} samples from {categories} categories"
        )
    weights = input.detach()
    values = weights.numpy()
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise RuntimeError(
            "[multinomial] probability tensor contains either `inf`, `nan` or element < 0"
        )
    if np.any(values.reshape(-1, categories).sum(axis=-1) <= 0):
        raise RuntimeError(
            "[multinomial] invalid multinomial distribution (sum of probabilities <= 0)"
        )
    p = _core._to_dtype(weights, _core.dtype.float64)
    if p.ndim == 1:
        p = p.unsqueeze(0)
    rows = p.shape[0]
    if replacement:
        result = _with_replacement(p, rows, num_samples, generator)
    else:
        result = _without_replacement(p, rows, num_samples, generator)
    return result.squeeze(0) if input.ndim == 1 else result


def _with_replacement(p: Tensor, rows: int, num_samples: int, generator) -> Tensor:
    # Inverse CDF: the sample is the number of cumulative weights <= u. Dividing by the total
    # makes the last one exactly 1 > u, and a zero-weight category is never counted alone.
    from ._manipulation import cumsum

    cdf = cumsum(p, -1)
    cdf = (cdf / cdf[:, -1:]).unsqueeze(1)
    block = max(1, _MAX_COMPARISONS // max(1, p.shape[1]))
    pieces = []
    for start in range(0, num_samples, block):
        count = min(block, num_samples - start)
        u = uniform("multinomial", generator, (rows, count), _core.dtype.float64)
        pieces.append(_core._sum(cdf <= u.unsqueeze(2), (2,), False))
    return pieces[0] if len(pieces) == 1 else _core._cat(pieces, 1)


def _without_replacement(p: Tensor, rows: int, num_samples: int, generator) -> Tensor:
    # The exponential race (the Gumbel top-k trick): with E ~ Exp(1), the categories in
    # increasing order of E / p are drawn in order, each without replacement.
    u = uniform("multinomial", generator, tuple(p.shape), _core.dtype.float64)
    keys = _core.where(p > 0, _core.log(1.0 - u) / p, _core._wrap_scalar(float("-inf")))
    order = _core._argsort(keys, 1, True)
    return order[:, :num_samples]
