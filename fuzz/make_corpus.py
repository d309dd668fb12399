#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/ (deterministic; rerun after changing a harness).

safetensors/: small valid files in the layout save_safetensors writes (8-byte little-endian
header length, JSON header padded with spaces to 8 bytes, raw little-endian data), and
malformed ones that each break one rule load_safetensors checks.

shapes/: byte programs for fuzz_shapes.cpp: the tensors to build, then one op per seed (each
op code of the harness at least once) with arguments that reach its success path, plus random
tails for the fuzzer to mutate. Regression inputs found by fuzzing live next to these as
crash-*/regress-* files and are not rewritten here.
"""

import base64
import json
import random
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent


def safetensors(header, data=b"", pad=True, length=None):
    text = (
        header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    )
    if pad:
        text += b" " * (-len(text) % 8)
    n = len(text) if length is None else length
    return struct.pack("<Q", n) + text + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def safetensors_seeds():
    f32 = struct.pack("<6f", 0, 1, 2, 3, 4, 5)
    f64 = struct.pack("<d", 3.5)
    i64 = struct.pack("<3q", -1, 0, 1 << 40)
    b = bytes([0, 1, 1, 0])
    seeds = {
        "empty": safetensors({}),
        "f32_2x3": safetensors({"w": entry("F32", [2, 3], 0, 24)}, f32),
        "f64_scalar": safetensors({"s": entry("F64", [], 0, 8)}, f64),
        "i64_vec": safetensors({"i": entry("I64", [3], 0, 24)}, i64),
        "bool_2x2": safetensors({"m": entry("BOOL", [2, 2], 0, 4)}, b),
        "zero_size": safetensors({"z": entry("F32", [0, 3], 0, 0)}),
        "multi_meta": safetensors(
            {
                "a": entry("F32", [2, 3], 0, 24),
                "b": entry("I64", [3], 24, 48),
                "c": entry("BOOL", [4], 48, 52),
                "__metadata__": {"format": "pt", "step": "10"},
            },
            f32 + i64 + b,
        ),
        "out_of_order": safetensors(
            {"second": entry("F64", [1], 24, 32), "first": entry("F32", [2, 3], 0, 24)}, f32 + f64
        ),
        "metadata_only": safetensors({"__metadata__": {"k": "v"}}),
        "escapes": safetensors(
            b'{"\\u00e9\\ud83d\\ude00\\n\\"x\\/":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
            struct.pack("<f", 1.0),
        ),
        "unpadded": safetensors({"w": entry("F32", [1], 0, 4)}, struct.pack("<f", 2.0), pad=False),
        "whitespace": safetensors(
            b' { "w" : { "dtype" : "F32" , "shape" : [ 1 ] , "data_offsets" : [ 0 , 4 ] } } ',
            struct.pack("<f", 2.0),
        ),
        # malformed, one rule each
        "bad_too_short": b"\x08\x00\x00",
        "bad_length_past_end": safetensors({}, length=1 << 20),
        "bad_length_huge": struct.pack("<Q", (1 << 64) - 1) + b"{}      ",
        "bad_truncated_data": safetensors({"w": entry("F32", [2, 3], 0, 24)}, f32[:20]),
        "bad_trailing_data": safetensors({"w": entry("F32", [1], 0, 4)}, f32[:8]),
        "bad_overlap": safetensors(
            {"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, f32[:12]
        ),
        "bad_gap": safetensors({"a": entry("F32", [1], 4, 8)}, f32[:8]),
        "bad_dtype": safetensors({"w": entry("F16", [2], 0, 4)}, f32[:4]),
        "bad_duplicate": safetensors(
            b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
            b'"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
            f32[:8],
        ),
        "bad_bool_byte": safetensors({"m": entry("BOOL", [2], 0, 2)}, bytes([1, 2])),
        "bad_utf8": safetensors(b'{"\xc3\x28":{}}'),
        "bad_nesting": safetensors(b"[" * 12 + b"]" * 12),
        "bad_float_shape": safetensors(b'{"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}'),
        "bad_shape_overflow": safetensors(
            {"w": entry("F32", [1 << 32, 1 << 32], 0, 0)},
        ),
        "bad_size_mismatch": safetensors({"w": entry("F32", [3], 0, 8)}, f32[:8]),
        "bad_extra_key": safetensors(
            {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": "y"}}, f32[:4]
        ),
        "bad_metadata_value": safetensors({"__metadata__": {"k": [1]}}),
        "bad_surrogate": safetensors(b'{"\\ud800":{}}'),
    }
    return seeds


# ---- fuzz_shapes programs (see Bytes in fuzz_shapes.cpp) ----


def arg(v):
    """The byte that Bytes::arg() reads as v, for v in [-4, 9]."""
    assert -4 <= v <= 9
    return v + 4


F32, F64, I64, BOOL = 0, 1, 2, 3


def tensor(shape, dtype, requires_grad=False):
    out = [len(shape)] + list(shape) + [dtype]
    if dtype in (F32, F64):
        out.append(1 if requires_grad else 0)
    return out


def program(tensors, *ops):
    out = [len(tensors) - 1]
    for t in tensors:
        out += t
    for op in ops:
        out += op
    return bytes(out)


def op(code, *args, x=0, y=1):
    return [x, y, code] + list(args)


def shapes_seeds():
    a = tensor([2, 3], F32, requires_grad=True)
    b = tensor([3], F64)
    c = tensor([2, 1, 3], I64)
    two = [a, b]
    seeds = {
        # flag bits are the low bit of a byte; arg bytes come from arg()
        "broadcast": program(two, op(0, 1, 1, 0, 0, 0, 0)),
        "add_broadcast": program(two, op(1, 1, 1)),
        "reshape_infer": program(two, op(2, 0, 0, 0, 1, 1)),  # related shape (2, -1)
        "view_t": program(two, op(21), op(3, 1, 0, 0, 3, 3), op(3, 0, 0, 0, 3, 0)),
        "expand": program(two, op(4, 1, 1, 2, 3, 3, 0)),
        "permute": program(two, op(5, 2, 1, 1, 1, 0)),
        "transpose": program(two, op(6, 0, arg(-1), 0, arg(0))),
        "squeeze_all": program([c, b], op(7, 1)),
        "squeeze_dims": program([c, b], op(7, 0, 1, 1, arg(1))),
        "unsqueeze": program(two, op(8, 0, arg(-1))),
        "flatten": program([c, b], op(9, 0, arg(0), 0, arg(-1))),
        "slice": program(two, op(10, 0, arg(1), arg(0), arg(2), arg(2))),
        "select": program(two, op(11, 0, arg(0), arg(-1))),
        "as_strided": program(two, op(12, 0, 1, arg(3), arg(2), arg(1), arg(0))),
        "matmul": program(two, op(13, 0)),
        "matmul_fit": program([a, a], op(13, 1, 0, 0, 3, 3)),
        "cat": program([a, a], op(14, 0, 0, arg(0))),
        "stack": program(two, op(14, 1, 0, arg(1), x=1)),
        "index_mixed": program(two, op(15, 3, 2, 1, 5, 1, 1, arg(1), 0, 0, 0)),
        "index_tensor": program(two, op(16, 1, 3, 1, 2, arg(1), arg(-1))),
        "index_mask": program(two, op(15, 1, 4, 1, 1, 0, 1, 1, 0, 1)),
        "reduce": program(two, op(17, 1, 1, arg(-1), 0, 0)),
        "sum_to": program(two, op(17, 0, 0, 3, 0, 0, 3)),
        "gather": program(two, op(18, 1, arg(0), 1, 0, 1, 1, 0, 1, 2, 1, 1, 1, 0)),
        "index_select": program(two, op(18, 1, arg(1), 0, 1, arg(2), 1, 2, 1, 0)),
        "inplace_view": program(two, op(19, 1, 1, arg(0), arg(1), 0, 1)),
        "clone_then_view": program(two, op(20), op(21), op(2, 1, 0, 0, 1, 1)),
        "new_tensor": program(two, op(22, 3, 1, 4, 2, 1, 0, 1), op(23, 2)),
    }
    # Found by a CI fuzz run: matmul of (.., 3, 0) with an empty (1, 0, 2^31) operand, whose
    # result is huge; the harness must skip it (span, not numel), not allocate 150 GB.
    seeds["matmul_with_empty_huge_operand"] = base64.b64decode(
        "AQ0NDQ0NDRENDw0NAgECJQEpAAEPAw6RAAAAAAAAAAAAkSD5CEGanwWehqaNi4uLi4uL34uLi4smPQUBAYuLDSUN"
        "DYt1dOb///90lXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcfFxcXFxcXFxcXFxcXGLi24NDQ0N"
        "DXZhbElkDQ0NDQ1fDQ0N"
    )
    rng = random.Random(8)
    for i in range(6):  # long random programs
        seeds[f"random_{i}"] = bytes(rng.randrange(256) for _ in range(rng.randrange(40, 200)))
    return seeds


def write(folder, seeds):
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (folder / name).write_bytes(data)
    print(f"{folder}: {len(seeds)} seeds")


if __name__ == "__main__":
    write(HERE / "corpus" / "safetensors", safetensors_seeds())
    write(HERE / "corpus" / "shapes", shapes_seeds())
