"""bp.save / bp.load as torch.save / torch.load: file objects as well as paths, nested
structures with their Python types, map_location, and clear errors for what can't be saved."""

import io
import math
from collections import OrderedDict, namedtuple

import bprop as bp
import numpy as np
import pytest
from bprop import nn


def assert_same(a, b):
    """a and b are equal structures with the same Python types and equal tensors."""
    if isinstance(a, bp.Tensor):
        assert isinstance(b, bp.Tensor) and a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        return
    assert type(b) is (dict if isinstance(a, dict) else type(a)), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        assert [type(k) for k in a] == [type(k) for k in b]
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def trained():
    bp.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    opt = bp.optim.Adam(net.parameters(), lr=0.01)
    opt.zero_grad()
    net(bp.randn(5, 3)).sum().backward()
    opt.step()
    return net, opt


NESTED = {
    "epoch": 3,
    "best": 0.91,
    "name": "run-1",
    "done": False,
    "none": None,
    "big": 2**62,
    "special": [float("inf"), -float("inf"), float("nan"), -0.0],
    "shape": (2, 3),
    "nested": {"list": [1, (2.5, "x"), [None, True]], 7: {"deep": ("a", ("b",))}},
    "unicode": "héllo ✓",
}


@pytest.mark.parametrize("via", ["path", "str", "bytesio", "open_file"])
def test_nested_checkpoint_round_trips_with_its_python_types(tmp_path, via):
    net, opt = trained()
    obj = {"model": net.state_dict(), "optimizer": opt.state_dict(), **NESTED}
    obj["tensors"] = [bp.arange(3), (bp.tensor([True, False]), bp.randn(2, dtype=bp.float64))]
    path = tmp_path / "ckpt.pt"
    if via == "path":
        bp.save(obj, path)
        back = bp.load(path)
    elif via == "str":
        bp.save(obj, str(path))
        back = bp.load(str(path))
    elif via == "bytesio":
        buffer = io.BytesIO()
        bp.save(obj, buffer)
        buffer.seek(0)
        back = bp.load(buffer)
    else:
        with open(path, "wb") as f:
            bp.save(obj, f)
        with open(path, "rb") as f:
            back = bp.load(f)
    model = obj["model"]
    assert isinstance(model, OrderedDict)
    assert_same({**obj, "model": dict(model)}, back)
    # optimizer state keeps its int keys, the parameter groups their lists
    assert sorted(back["optimizer"]["state"]) == list(range(4))
    assert back["optimizer"]["param_groups"][0]["params"] == [0, 1, 2, 3]


def test_a_checkpoint_from_a_file_object_restores_model_and_optimizer():
    net, opt = trained()
    buffer = io.BytesIO()
    bp.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 1}, buffer)
    buffer.seek(0)
    ckpt = bp.load(buffer, map_location="cpu", weights_only=True)
    net2 = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    net2.load_state_dict(ckpt["model"])
    opt2 = bp.optim.Adam(net2.parameters(), lr=0.5)
    opt2.load_state_dict(ckpt["optimizer"])
    x = bp.randn(6, 3)
    for model, optimizer in ((net, opt), (net2, opt2)):
        optimizer.zero_grad()
        model(x).pow(2).sum().backward()
        optimizer.step()
    for p, q in zip(net.parameters(), net2.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_a_lone_tensor_and_top_level_containers():
    for obj in (bp.randn(3, 2), [bp.ones(2), 5], (bp.zeros(1), "a"), [], {}):
        buffer = io.BytesIO()
        bp.save(obj, buffer)
        assert_same(obj, bp.load(io.BytesIO(buffer.getvalue())))


def test_the_file_object_holds_the_same_bytes_as_the_path(tmp_path):
    obj = {"w": bp.arange(6).reshape(2, 3), "step": 4}
    bp.save(obj, tmp_path / "a.safetensors")
    buffer = io.BytesIO()
    bp.save(obj, buffer)
    assert buffer.getvalue() == (tmp_path / "a.safetensors").read_bytes()
    # appended after what the file object already holds, as torch.save does
    buffer = io.BytesIO(b"head")
    buffer.seek(4)
    bp.save(obj, buffer)
    buffer.seek(4)
    assert_same(obj, bp.load(buffer))


def test_numpy_scalars_are_stored_as_python_numbers():
    buffer = io.BytesIO()
    bp.save({"a": np.float64(0.5), "b": np.int64(3), "c": np.bool_(True), np.int64(2): 1}, buffer)
    back = bp.load(io.BytesIO(buffer.getvalue()))
    assert back == {"a": 0.5, "b": 3, "c": True, 2: 1}
    assert [type(v) for v in back.values()] == [float, int, bool, int]


def test_colliding_dotted_names_and_shared_tensors_load_their_values():
    shared = bp.arange(4)
    obj = {"a.b": bp.ones(2), "a": {"b": bp.zeros(3)}, "x": shared, "y": [shared, shared]}
    buffer = io.BytesIO()
    bp.save(obj, buffer)
    assert_same(obj, bp.load(io.BytesIO(buffer.getvalue())))


def test_torch_reads_nothing_of_ours_but_safetensors_reads_the_tensors():
    stn = pytest.importorskip("safetensors.numpy")
    buffer = io.BytesIO()
    bp.save({"model": {"w": bp.ones(2, 2)}, "epoch": 2}, buffer)
    arrays = stn.load(buffer.getvalue())
    assert list(arrays) == ["model.w"]
    np.testing.assert_array_equal(arrays["model.w"], np.ones((2, 2), np.float32))


def test_map_location_on_the_cpu():
    buffer = io.BytesIO()
    bp.save({"w": bp.arange(3)}, buffer)
    data = buffer.getvalue()
    for location in ("cpu", {"cpu": "cpu"}, lambda storage, loc: storage):
        np.testing.assert_array_equal(
            bp.load(io.BytesIO(data), map_location=location)["w"].numpy(), [0, 1, 2]
        )
    doubled = bp.load(io.BytesIO(data), map_location=lambda t, loc: t * 2)
    np.testing.assert_array_equal(doubled["w"].numpy(), [0, 2, 4])
    with pytest.raises(RuntimeError, match=r"\[load\].*'cuda:0'.*CPU"):
        bp.load(io.BytesIO(data), map_location="cuda:0")
    with pytest.raises(RuntimeError, match="cuda"):
        bp.load(io.BytesIO(data), map_location={"cpu": "cuda"})


def test_saving_a_module_or_optimizer_says_to_save_the_state_dict(tmp_path):
    net, opt = trained()
    for obj, kind in ((net, "Sequential"), ({"opt": opt}, "Adam")):
        path = tmp_path / "x.pt"
        with pytest.raises(TypeError, match=rf"\[save\] can't save a {kind}.*state_dict\(\)"):
            bp.save(obj, path)
        assert not path.exists()
    buffer = io.BytesIO()
    with pytest.raises(TypeError, match=r"\[save\] can't store set"):
        bp.save({"s": {1, 2}}, buffer)
    with pytest.raises(TypeError, match=r"\[save\] can't store ndarray"):
        bp.save([np.ones(2)], buffer)
    with pytest.raises(TypeError, match="keys"):
        bp.save({1.5: 1}, buffer)
    assert buffer.getvalue() == b""  # a failed save writes nothing


def test_named_tuples_and_other_objects_are_refused():
    Point = namedtuple("Point", "x y")
    buffer = io.BytesIO()
    bp.save(Point(1, 2), buffer)  # a tuple subclass: it comes back as a plain tuple
    assert bp.load(io.BytesIO(buffer.getvalue())) == (1, 2)
    with pytest.raises(TypeError, match="object"):
        bp.save({"f": object()}, io.BytesIO())


def test_bad_file_arguments_raise_type_errors(tmp_path):
    with pytest.raises(TypeError, match=r"\[save\] f must be a path"):
        bp.save({"a": 1}, 42)
    with pytest.raises(TypeError, match=r"\[load\] f must be a path"):
        bp.load(3.5)
    with open(tmp_path / "t.txt", "w") as f, pytest.raises(TypeError, match="binary mode"):
        bp.save({"a": 1}, f)
    (tmp_path / "t.txt").write_text("text")
    with open(tmp_path / "t.txt") as f, pytest.raises(TypeError, match="binary mode"):
        bp.load(f)


def test_a_malformed_file_object_names_it(tmp_path):
    buffer = io.BytesIO(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(ValueError, match=r"\[load\] <file object>"):
        bp.load(buffer)
    path = tmp_path / "short.pt"
    path.write_bytes(b"\x01\x02")
    with open(path, "rb") as f, pytest.raises(ValueError, match="short.pt"):
        bp.load(f)


def test_matches_torch_save_load_round_trip_semantics():
    torch = pytest.importorskip("torch")
    ours, theirs = io.BytesIO(), io.BytesIO()
    obj = {"epoch": 3, "loss": 0.25, "hist": (1, 2), "w": [1.0, 2.0]}
    bp.save({**obj, "t": bp.tensor([1.0, 2.0])}, ours)
    torch.save({**obj, "t": torch.tensor([1.0, 2.0])}, theirs)
    ours.seek(0)
    theirs.seek(0)
    a, b = bp.load(ours), torch.load(theirs)
    assert list(a) == list(b)
    for key in obj:
        assert a[key] == b[key] and type(a[key]) is type(b[key])
    np.testing.assert_array_equal(a["t"].numpy(), b["t"].numpy())
