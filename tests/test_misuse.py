"""The misuse catalogue: one row per class of user mistake, each asserting the exception type
and the part of its message that tells the user what went wrong (the op, and the shapes, dims,
dtypes or values) and, where it helps, how to fix it.

The detailed behaviour of many classes (nothing changed by a failed call, partial gradient
accumulation, ...) is tested in test_errors.py, test_indexing.py, test_optim.py and
test_serialization.py; this file is the checklist that every class is covered at all.
"""

import os
import struct
import subprocess
import sys

import bprop as bp
import bprop.nn.functional as F
import numpy as np
import pytest


def _backward_twice():
    x = bp.ones(3, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    y.backward()


def _inplace_on_saved():
    x = bp.ones(3, requires_grad=True)
    h = x * 1.0
    y = (h * h).sum()  # saves h
    h.add_(1.0)
    y.backward()


def _inplace_on_leaf():
    w = bp.ones(3, requires_grad=True)
    w.mul_(2.0)


def _safetensors(header: bytes, payload: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + payload


LEAF = bp.ones(2, 2, requires_grad=True)

# (class, call, exception type, message fragments as a regex)
MISUSE = [
    # Shapes and broadcasting.
    ("broadcast mismatch", lambda: bp.ones(2, 3) + bp.ones(4),
     ValueError, r"\[add\] shapes \(2, 3\) and \(4,\) cannot be broadcast"),
    ("matmul inner dims", lambda: bp.ones(2, 3) @ bp.ones(2, 3),
     ValueError, r"\[matmul\].*\(2, 3\).*\(2, 3\)"),
    ("cat sizes", lambda: bp.cat([bp.ones(2, 3), bp.ones(3, 2)]),
     ValueError, r"\[cat\] sizes of tensors must match.*\(3, 2\)"),
    ("dtype mismatch", lambda: bp.ones(2, 2) @ bp.ones(2, 2, dtype=bp.float64),
     TypeError, r"\[matmul\].*float32 and float64"),
    # Dims and axes.
    ("dim out of range", lambda: bp.ones(2, 3).sum(dim=5),
     IndexError, r"\[sum\] dimension 5 is out of range for a tensor of 2 dimensions"),
    ("negative dim out of range", lambda: bp.ones(2, 3).transpose(0, -3),
     IndexError, r"\[transpose\] dimension -3 is out of range"),
    ("repeated dim", lambda: bp.ones(2, 3).permute(0, 0),
     ValueError, r"\[permute\] repeated dim in \(0, 0\)"),
    ("repeated reduction dim", lambda: bp.ones(2, 3).sum(dim=(0, 0)),
     ValueError, r"\[sum\] dimension 0 appears multiple times"),
    # Reshapes, views and expands.
    ("reshape numel", lambda: bp.ones(2, 3).reshape(4, 2),
     ValueError, r"\[reshape\] shape \(4, 2\) is invalid for input of size 6"),
    ("reshape two -1", lambda: bp.ones(6).reshape(-1, -1),
     ValueError, r"\[reshape\].*-1"),
    ("view of non-contiguous", lambda: bp.ones(2, 3).T.view(6),
     RuntimeError, r"\[view\].*\(3, 2\).*Use \.reshape"),
    ("expand non-singleton", lambda: bp.ones(2, 3).expand(4, 3),
     ValueError, r"\[expand\].*\(4\).*existing size \(2\).*\(4, 3\)"),
    # Indexing.
    ("index out of range", lambda: bp.ones(2, 3)[5],
     IndexError, r"\[index\] index 5 is out of bounds for dimension 0 with size 2"),
    ("tensor index out of range", lambda: bp.ones(2, 3)[bp.tensor([0, 7])],
     IndexError, r"index 7 is out of bounds for dimension 0 with size 2"),
    ("gather out of range", lambda: bp.ones(2, 3).gather(1, bp.tensor([[0, 9]])),
     IndexError, r"\[gather\] index 9 is out of bounds for dimension 1 with size 3"),
    # Class targets.
    ("class target out of range", lambda: F.cross_entropy(bp.ones(2, 3), bp.tensor([0, 3])),
     IndexError, r"target 3 is out of bounds for 3 classes"),
    ("negative class target", lambda: F.cross_entropy(bp.ones(2, 3), bp.tensor([0, -1])),
     IndexError, r"target -1 is out of bounds for 3 classes"),
    ("float class target", lambda: F.nll_loss(bp.ones(2, 3), bp.tensor([0.0, 1.0])),
     TypeError, r"\[nll_loss\] class targets must be int64, got float32"),
    # Gradients on what can't have them.
    ("int tensor requires grad", lambda: bp.tensor([1, 2], requires_grad=True),
     RuntimeError, r"only tensors of floating point dtype can require gradients, not int64"),
    ("bool tensor requires grad", lambda: bp.tensor([True]).requires_grad_(),
     RuntimeError, r"floating point.*not bool"),
    ("numpy() of a tensor in a graph", lambda: LEAF.numpy(),
     RuntimeError, r"\[numpy\].*requires grad; use tensor\.detach\(\)\.numpy\(\)"),
    # backward and grad.
    ("non-scalar backward", lambda: (LEAF * 2).backward(),
     RuntimeError, r"\[backward\] grad can be implicitly created only for scalar outputs.*"
                   r"\(2, 2\).*gradient="),
    ("backward twice", _backward_twice,
     RuntimeError, r"backward through the graph a second time.*retain_graph=True"),
    ("backward without grad", lambda: bp.ones(2).sum().backward(),
     RuntimeError, r"\[backward\] element 0 of tensors does not require grad"),
    ("unused grad input",
     lambda: bp.grad((LEAF * 2).sum(), [LEAF, bp.ones(2, requires_grad=True)]),
     RuntimeError, r"\[grad\] input 1 appears to not have been used.*allow_unused=True"),
    ("in-place on saved tensor", _inplace_on_saved,
     RuntimeError, r"modified by an inplace operation.*version 1; expected version 0.*"
                   r"\.clone\(\).*detect_anomaly"),
    ("in-place on leaf", _inplace_on_leaf,
     RuntimeError, r"\[mul_\] a leaf tensor that requires grad.*no_grad\(\)"),
    # Data that isn't a tensor.
    ("ragged data", lambda: bp.tensor([[1, 2], [3]]),
     ValueError, r"\[tensor\] ragged nested sequence"),
    ("string data", lambda: bp.tensor(["a", "b"]),
     TypeError, r"\[tensor\] can't make a tensor from data of numpy dtype <U1"),
    ("object data", lambda: bp.tensor(np.array([1, None], dtype=object)),
     ValueError, r"\[tensor\].*unsupported element types"),
    ("item of many elements", lambda: bp.ones(2).item(),
     ValueError, r"\[item\] a tensor with 2 elements cannot be converted"),
    # Sizes.
    ("negative size", lambda: bp.zeros(-1, 3),
     ValueError, r"negative dimension in shape \(-1, 3\)"),
    ("overflowing size", lambda: bp.zeros(2**40, 2**40),
     ValueError, r"\(1099511627776, 1099511627776\) has more elements than a 64-bit count"),
    ("huge size", lambda: bp.zeros(2**45),
     MemoryError, r"out of memory: can't allocate 140737488355328 bytes for a float32 tensor "
                  r"of shape \(35184372088832,\)"),
    # Reductions without an identity.
    ("max of empty", lambda: bp.ones(0).max(),
     ValueError, r"\[max\] cannot reduce over a zero-size dimension \(input shape \(0,\)"),
    ("amin of empty dim", lambda: bp.ones(0, 3).amin(dim=0),
     ValueError, r"\[amin\] cannot reduce over a zero-size dimension.*\(0, 3\), dim 0"),
    ("argmax of empty", lambda: bp.ones(3, 0).argmax(dim=1),
     ValueError, r"cannot reduce over a zero-size dimension.*\(3, 0\)"),
    # Optimizer hyper-parameters.
    ("negative learning rate", lambda: bp.optim.SGD([LEAF], lr=-1.0),
     ValueError, r"\[SGD\] invalid learning rate: -1"),
    ("nesterov without momentum", lambda: bp.optim.SGD([LEAF], lr=0.1, nesterov=True),
     ValueError, r"\[SGD\] Nesterov momentum requires a momentum"),
    ("adam beta out of range", lambda: bp.optim.Adam([LEAF], betas=(1.5, 0.9)),
     ValueError, r"\[Adam\] invalid beta parameter at index 0: 1\.5"),
    ("empty parameter list", lambda: bp.optim.SGD([], lr=0.1),
     ValueError, r"\[SGD\] got an empty parameter list"),
    ("non-leaf parameter", lambda: bp.optim.SGD([LEAF * 2], lr=0.1),
     ValueError, r"\[SGD\].*leaf"),
    # Threads.
    ("zero threads", lambda: bp.set_num_threads(0),
     ValueError, r"\[set_num_threads\] the number of threads must be at least 1 .*, got 0"),
    ("too many threads", lambda: bp.set_num_threads(1_000_000),
     ValueError, r"\[set_num_threads\] .* at most 1024, got 1000000"),
    ("fractional threads", lambda: bp.set_num_threads(2.5),
     TypeError, r"set_num_threads"),
]  # fmt: skip


@pytest.mark.parametrize(
    "call, error, message", [row[1:] for row in MISUSE], ids=[row[0] for row in MISUSE]
)
def test_misuse_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
    # Every call shares LEAF; none may change it or give it a gradient.
    assert np.array_equal(LEAF.detach().numpy(), np.ones((2, 2), np.float32))
    assert LEAF.grad is None


# ---- Checkpoint files ----


CHECKPOINTS = [
    ("truncated length", b"\x10\x00\x00", r"file of 3 bytes is too short"),
    ("header past the end", _safetensors(b"{}")[:-1], r"header"),
    ("not JSON", _safetensors(b"{notjson"), r"header is not valid JSON"),
    ("unknown dtype",
     _safetensors(b'{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}', b"\0\0"),
     r"F16"),
    ("data shorter than the shape",
     _safetensors(b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}', bytes(8)),
     r"\ba\b"),
]  # fmt: skip


@pytest.mark.parametrize(
    "data, message", [row[1:] for row in CHECKPOINTS], ids=[row[0] for row in CHECKPOINTS]
)
def test_malformed_checkpoint(tmp_path, data, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"\[load\] .*bad\.safetensors.*" + message):
        bp.load(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"\[load\] can't open .*nothing\.safetensors"):
        bp.load(tmp_path / "nothing.safetensors")


def test_checkpoint_that_is_a_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"\[load\] can't open"):
        bp.load(tmp_path)


# ---- Misaligned data ----


def _misaligned_float32(values):
    raw = np.zeros(4 * len(values) + 1, np.uint8)
    array = raw[1:].view(np.float32)  # starts one byte into an allocation: not 4-byte aligned
    array[:] = values
    assert not array.flags.aligned and array.flags.writeable
    return array


def test_misaligned_numpy_array_is_copied_correctly():
    array = _misaligned_float32([1.5, -2.0, 3.25])
    assert np.array_equal(bp.tensor(array).numpy(), [1.5, -2.0, 3.25])
    assert np.array_equal(bp.tensor(array[::-2]).numpy(), [3.25, 1.5])


def test_misaligned_numpy_array_cannot_be_shared():
    with pytest.raises(ValueError, match=r"\[from_numpy\] .*not aligned to its 4-byte elements"):
        bp.from_numpy(_misaligned_float32([1.0, 2.0]))


def test_checkpoint_with_misaligned_tensors(tmp_path):
    # A bool tensor of 3 bytes first puts the float32 and float64 data at odd offsets; reading
    # them in place was undefined behaviour, which scripts/sanitize.sh (UBSan) reported.
    flags, floats, doubles = [True, False, True], [1.5, -2.5], [0.125, 4.0, -8.0]
    bp.save({"a": bp.tensor(flags), "b": bp.tensor(floats), "c": bp.tensor(doubles,
            dtype=bp.float64)}, tmp_path / "odd.safetensors")  # fmt: skip
    loaded = bp.load(tmp_path / "odd.safetensors")
    assert loaded["a"].numpy().tolist() == flags
    assert loaded["b"].numpy().tolist() == floats
    assert loaded["c"].numpy().tolist() == doubles


@pytest.mark.parametrize("value", ["abc", "0", "-3", "2000000", "4x"])
def test_bad_thread_count_in_the_environment_is_ignored(value):
    # No caller to raise to: the library falls back to the machine's thread count.
    code = "import os, bprop; print(bprop.get_num_threads(), os.cpu_count())"
    env = dict(os.environ, BPROP_NUM_THREADS=value)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    threads, cpus = result.stdout.split()
    assert threads == cpus


# ---- Integer overflow ----

INT64_EXTREMES = np.array([2**63 - 1, -(2**63), 3, -7], dtype=np.int64)
ZERO_INDEX = bp.zeros(4, dtype=bp.int64)


@pytest.mark.parametrize(
    "name, ours, theirs",
    [
        ("add", lambda t: t + 1, lambda a: a + 1),
        ("sub", lambda t: t - 2, lambda a: a - 2),
        ("mul", lambda t: t * 3, lambda a: a * 3),
        ("neg", lambda t: -t, lambda a: -a),
        ("abs", lambda t: t.abs(), lambda a: np.abs(a)),
        ("sum", lambda t: t.sum(), lambda a: a.sum()),
        ("prod", lambda t: t.prod(), lambda a: a.prod()),
        ("pow", lambda t: t ** bp.tensor(3), lambda a: a**3),
        ("matmul", lambda t: t.reshape(2, 2) @ t.reshape(2, 2),
         lambda a: a.reshape(2, 2) @ a.reshape(2, 2)),
        ("index_add", lambda t: bp.zeros(1, dtype=bp.int64).index_add(0, ZERO_INDEX, t),
         lambda a: np.array([a.sum()])),
    ],
)  # fmt: skip
def test_int64_overflow_wraps_around_as_in_numpy(name, ours, theirs):
    # Signed overflow is undefined behaviour in C++; the kernels wrap explicitly, and the
    # sanitizer run (scripts/sanitize.sh) checks that they do.
    with np.errstate(over="ignore"):
        expected = theirs(INT64_EXTREMES.copy())
    assert np.array_equal(ours(bp.tensor(INT64_EXTREMES)).numpy(), expected)
