"""bp.save / bp.load: safetensors round trips, interoperability with the safetensors package
both ways, and a corpus of malformed files that must each raise a clear error."""

import json
import struct

import bprop as bp
import numpy as np
import pytest
from bprop import _core, nn


def file_bytes(header: dict, data: bytes, pad: bool = True) -> bytes:
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def parse(blob: bytes):
    return _core._parse_safetensors(blob)


def test_round_trip_of_every_dtype_and_shape(tmp_path):
    tensors = {
        "f32": bp.randn(3, 4),
        "f64": bp.randn(2, dtype=bp.float64),
        "i64": bp.arange(10).reshape(2, 5),
        "bool": bp.tensor([True, False, True]),
        "scalar": bp.tensor(2.5),
        "empty": bp.zeros(0, 3),
        "strided": bp.randn(4, 6)[:, ::2].T,
    }
    path = tmp_path / "t.safetensors"
    bp.save(tensors, path)
    back = bp.load(path)
    assert list(back) == list(tensors)
    for name, t in tensors.items():
        assert back[name].dtype == t.dtype and back[name].shape == t.shape
        np.testing.assert_array_equal(back[name].numpy(), t.numpy())
    assert not (tmp_path / "t.safetensors.tmp").exists()


def test_model_and_optimizer_checkpoint_resumes_training(tmp_path):
    bp.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    opt = bp.optim.Adam(net.parameters(), lr=0.01)
    x, y = bp.randn(16, 3), bp.randn(16, 1)

    def train(model, optimizer, steps):
        for _ in range(steps):
            optimizer.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()

    train(net, opt, 5)
    path = tmp_path / "ckpt.safetensors"
    bp.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 5}, path)
    ckpt = bp.load(path)
    assert ckpt["epoch"] == 5
    net2 = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    net2.load_state_dict(ckpt["model"])
    opt2 = bp.optim.Adam(net2.parameters(), lr=0.5)
    opt2.load_state_dict(ckpt["optimizer"])
    assert opt2.lr == 0.01
    train(net, opt, 5)
    train(net2, opt2, 5)
    for p, q in zip(net.parameters(), net2.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_interoperates_with_the_safetensors_package(tmp_path):
    stn = pytest.importorskip("safetensors.numpy")
    ours = tmp_path / "ours.safetensors"
    bp.save({"w": bp.randn(3, 2), "n": bp.arange(4), "m": bp.tensor([True, False])}, ours)
    theirs = stn.load_file(str(ours))
    assert sorted(theirs) == ["m", "n", "w"]
    np.testing.assert_array_equal(theirs["n"], np.arange(4))
    written = tmp_path / "theirs.safetensors"
    arrays = {"a": np.arange(12, dtype=np.float64).reshape(3, 4), "b": np.ones(5, np.float32)}
    stn.save_file(arrays, str(written), metadata={"note": "from safetensors"})
    back = bp.load(written)
    for name, array in arrays.items():
        np.testing.assert_array_equal(back[name].numpy(), array)


def test_save_rejects_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="save"):
        bp.save({"f": lambda: 0}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="keys"):
        bp.save({(1, 2): bp.ones(1)}, tmp_path / "x.safetensors")


def test_a_failed_save_leaves_the_old_file(tmp_path):
    path = tmp_path / "keep.safetensors"
    bp.save({"a": bp.ones(2)}, path)
    before = path.read_bytes()
    with pytest.raises(FileNotFoundError, match=r"\[save\] can't open .*missing_dir"):
        bp.save({"a": bp.zeros(2)}, tmp_path / "missing_dir" / "x.safetensors")
    assert path.read_bytes() == before


GOOD_HEADER = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
               "b": {"dtype": "I64", "shape": [1], "data_offsets": [8, 16]}}  # fmt: skip
GOOD = file_bytes(GOOD_HEADER, bytes(16))


def test_the_good_file_parses():
    tensors, _ = parse(GOOD)
    assert [name for name, _ in tensors] == ["a", "b"]


def test_every_truncation_raises():
    for cut in range(len(GOOD)):
        with pytest.raises(ValueError, match=r"\[load\]"):
            parse(GOOD[:cut])


def bad(header=None, data=bytes(16), raw_header=None):
    if raw_header is not None:
        return struct.pack("<Q", len(raw_header)) + raw_header + data
    return file_bytes(header, data)


MALFORMED = {
    "header_length_beyond_file": (struct.pack("<Q", 10**6) + b"{}", "exceeds"),
    "header_length_huge": (struct.pack("<Q", 2**63) + b"{}", "exceeds"),
    "not_utf8": (bad(raw_header=b'{"\xff": 1}'), "UTF-8"),
    "not_json": (bad(raw_header=b"{not json}"), "JSON"),
    "not_an_object": (bad(raw_header=b"[1, 2]"), "object"),
    "duplicate_names": (
        bad(
            raw_header=b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
            b'"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}'
        ),
        "duplicate",
    ),  # fmt: skip
    "bad_dtype": (bad({"a": {"dtype": "F16", "shape": [8], "data_offsets": [0, 16]}}), "dtype"),
    "overlap": (
        bad(
            {
                "a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
            }
        ),
        "overlap",
    ),  # fmt: skip
    "gap": (
        bad(
            {
                "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
            }
        ),
        "gap",
    ),  # fmt: skip
    "uncovered_tail": (
        bad({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}),
        "not covered",
    ),  # fmt: skip
    "size_mismatch": (
        bad({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}),
        "needs",
    ),  # fmt: skip
    "offsets_beyond_data": (
        bad({"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}}),
        "outside",
    ),  # fmt: skip
    "huge_shape": (
        bad({"a": {"dtype": "F64", "shape": [2**40, 2**40], "data_offsets": [0, 16]}}),
        "64 bits",
    ),  # fmt: skip
    "negative_size": (
        bad(raw_header=b'{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,16]}}'),
        "JSON",
    ),  # fmt: skip
    "float_offsets": (
        bad(raw_header=b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16.0]}}'),
        "integers",
    ),  # fmt: skip
    "missing_field": (bad({"a": {"dtype": "F32", "shape": [4]}}), "exactly"),
    "extra_field": (
        bad({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16], "x": 1}}),
        "exactly",
    ),  # fmt: skip
    "bad_bool_byte": (
        file_bytes({"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\x01\x07"),
        "bool",
    ),  # fmt: skip
    "metadata_not_strings": (bad({"__metadata__": {"k": 1}}, data=b""), "strings"),
    "deep_nesting": (bad(raw_header=b"[" * 50 + b"]" * 50), "deeply"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_files_raise_clear_errors(name):
    blob, message = MALFORMED[name]
    with pytest.raises(ValueError, match=message):
        parse(blob)


def test_load_of_a_malformed_file_on_disk_names_the_file(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(GOOD[:20])
    with pytest.raises(ValueError, match="broken.safetensors"):
        bp.load(path)


@pytest.mark.parametrize(
    "structure",
    ["[]", '"x"', "null", '{"tensor": ["a"]}', '{"dict": [1]}', '{"dict": 5}', '{"list": 3}',
     "[" * 5000 + "]" * 5000],
    ids=["list", "string", "null", "tensor_list", "dict_items", "dict_int", "list_int", "deep"],
)  # fmt: skip
def test_malformed_structure_metadata_raises_value_error(tmp_path, structure):
    path = tmp_path / "m.safetensors"
    _core._save_safetensors(str(path), [("a", bp.ones(2))], {"bprop.structure": structure})
    with pytest.raises(ValueError, match="bprop.structure"):
        bp.load(path)
