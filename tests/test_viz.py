"""bp.viz: the autograd graph as DOT text, gradient norms after backward, rendering."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import bprop as bp
import numpy as np
import pytest

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz `dot` is not installed")
ROOT = Path(__file__).resolve().parents[1]


def f64(values, requires_grad=False):
    return bp.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


def nodes(source: str) -> dict[str, str]:
    """{node id: label} of a DOT text made by bp.viz (labels with escapes undone)."""
    found = re.findall(r'^\s+(\w+) \[label="((?:[^"\\]|\\.)*)"', source, re.M)
    return {nid: label.replace("\\n", "\n").replace('\\"', '"') for nid, label in found}


def edges(source: str) -> list[tuple[str, str]]:
    return re.findall(r"^\s+(\w+) -> (\w+)", source, re.M)


def by_label(source: str) -> dict[str, str]:
    """{first label line: node id}."""
    return {label.split("\n")[0]: nid for nid, label in nodes(source).items()}


def small():
    w = f64([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
    b = f64([0.25, -0.5], requires_grad=True)
    x = f64([[1.0, 2.0]])
    h = bp.tanh(x @ w + b)
    loss = (h * h).sum()
    return w, b, x, h, loss


def test_structure_of_a_small_graph():
    w, b, _, h, loss = small()
    src = bp.viz.graph(loss, params={"w": w, "b": b, "h": h, "loss": loss}).source
    assert src.startswith("digraph bprop {") and src.rstrip().endswith("}")
    labels = nodes(src)
    # ops in depth-first order from the output, PyTorch names shortened
    assert labels == {
        "n0": "sum",
        "n1": "mul",
        "n2": "h = tanh\n(1, 2) float64",
        "n3": "add",
        "n4": "mm",
        "n5": "w\n(2, 2) float64\nrequires_grad",
        "n6": "b\n(2,) float64\nrequires_grad",
        "out0": "loss\n() float64",
    }
    assert edges(src) == [
        ("n1", "n0"),
        ("n2", "n1"),  # h * h: one node, two edges into mul
        ("n2", "n1"),
        ("n3", "n2"),
        ("n4", "n3"),
        ("n6", "n3"),
        ("n5", "n4"),
        ("n0", "out0"),
    ]


def test_unnamed_leaves_and_default_output_name():
    _, _, _, _, loss = small()
    labels = nodes(bp.viz.graph(loss).source)
    assert labels["out0"] == "output\n() float64"
    leaves = sorted(v.split("\n")[0] for v in labels.values() if v.startswith("leaf"))
    assert leaves == ["leaf0", "leaf1"]


def test_grads_after_backward_match_numpy():
    w, b, x, h, loss = small()
    loss.backward(retain_graph=True)
    src = bp.viz.graph(loss, params={"w": w, "b": b, "h": h}, show_grads=True).source
    labels = nodes(src)
    ids = by_label(src)

    w_np, b_np, x_np = np.array([[1.0, -2.0], [0.5, 3.0]]), np.array([0.25, -0.5]), [[1.0, 2.0]]
    h_np = np.tanh(np.array(x_np) @ w_np + b_np)
    delta_h = 2 * h_np  # dL/dh for L = sum(h^2)
    delta_a = delta_h * (1 - h_np**2)  # the lecture's local error at the pre-activation
    grad_w = np.array(x_np).T @ delta_a
    expected = {
        "w": np.linalg.norm(grad_w),
        "b": np.linalg.norm(delta_a),
        "h = tanh": np.linalg.norm(delta_h),
    }
    for name, norm in expected.items():
        shown = re.search(r"‖(?:grad|δ)‖ = (\S+)", labels[ids[name]]).group(1)
        assert float(shown) == pytest.approx(norm, rel=1e-3), name
    # the largest norm gets the darkest colour, and the legend states the scale
    largest = max(expected, key=expected.get)
    assert re.search(rf'^\s+{ids[largest]} \[.*fillcolor="{bp.viz.PALETTE[-1]}"', src, re.M)
    assert "legend [label=<" in src and f"largest = {max(expected.values()):.4g}" in src
    # viz computed δ with bp.grad: the leaves' .grad is untouched
    np.testing.assert_allclose(w.grad.numpy(), grad_w, rtol=1e-12)


def test_grads_before_backward_are_none():
    w, b, _, _, loss = small()
    src = bp.viz.graph(loss, params={"w": w, "b": b}, show_grads=True).source
    labels, ids = nodes(src), by_label(src)
    assert labels[ids["w"]].endswith("\ngrad: None")
    assert labels[ids["b"]].endswith("\ngrad: None")
    assert "legend" not in src


def test_delta_needs_a_live_graph():
    _, _, _, h, loss = small()
    loss.backward()  # frees the graph
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        bp.viz.graph(loss, params={"h": h}, show_grads=True)


def test_output_is_deterministic():
    def draw():
        w, b, _, h, loss = small()
        loss.backward(retain_graph=True)
        return bp.viz.graph(loss, params={"w": w, "b": b, "h": h}, show_grads=True).source

    assert draw() == draw()


def test_create_graph_gradient_is_a_graph():
    x = f64([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x * x).sum()
    (g,) = bp.grad(y, [x], create_graph=True)
    src = bp.viz.graph(g, params={"x": x, "dy/dx": g}).source
    labels = nodes(src)
    assert labels["out0"] == "dy/dx\n(3,) float64"
    ops = [v for v in labels.values() if "\n" not in v]
    assert "mul" in ops and len(labels) > 3
    assert "x\n(3,) float64\nrequires_grad" in labels.values()
    # and its own gradient can be drawn after a second backward
    g.sum().backward()
    labels = nodes(bp.viz.graph(g, params={"x": x}, show_grads=True).source)
    x_label = next(v for v in labels.values() if v.startswith("x\n"))
    assert float(x_label.split("= ")[-1]) == pytest.approx(
        np.linalg.norm(6 * np.arange(1, 4)), rel=1e-3
    )


def test_multiple_outputs_share_one_graph():
    x = f64([1.0, 2.0], requires_grad=True)
    s = bp.exp(x)
    a, b = s.sum(), (s * 2.0).mean()
    src = bp.viz.graph(a, b, params={"x": x, "s": s, "a": a, "b": b}).source
    labels = nodes(src)
    assert labels["out0"].startswith("a\n") and labels["out1"].startswith("b\n")
    assert sum(v.startswith("s = exp") for v in labels.values()) == 1
    assert sum(v.startswith("x\n") for v in labels.values()) == 1
    assert bp.viz.graph([a, b]).source == bp.viz.graph(a, b).source


def test_shared_intermediate_appears_once_with_two_out_edges():
    x = f64([0.5, -1.0], requires_grad=True)
    m = x * 3.0
    y = (bp.sin(m) + bp.cos(m)).sum()
    src = bp.viz.graph(y, params={"x": x, "m": m}).source
    ids = by_label(src)
    m_id = ids["m = mul"]
    assert sum(label.startswith("m = ") for label in nodes(src).values()) == 1
    consumers = sorted(nodes(src)[dst] for src_id, dst in edges(src) if src_id == m_id)
    assert consumers == ["cos", "sin"]


def test_tensor_without_history_is_a_one_node_graph():
    c = f64([1.0, 2.0])
    assert nodes(bp.viz.graph(c).source) == {
        "out0": "output\n(2,) float64\n(no grad_fn: not recorded)"
    }
    leaf = f64([1.0], requires_grad=True)
    assert nodes(bp.viz.graph(leaf, params={"p": leaf}).source) == {
        "out0": "p\n(1,) float64\nrequires_grad"
    }


def test_constants_are_optional_nodes():
    x = f64([1.0, 2.0], requires_grad=True)
    y = (x - f64([3.0, 4.0])).sum()
    assert "constant" not in bp.viz.graph(y).source
    src = bp.viz.graph(y, show_constants=True).source
    assert nodes(src)["c0"] == "constant" and ("c0", by_label(src)["sub"]) in edges(src)


def test_labels_are_escaped():
    x = f64([1.0], requires_grad=True)
    src = bp.viz.graph((x * 2.0).sum(), params={'say "hi"\\': x}).source
    assert r'label="say \"hi\"\\\n(1,) float64' in src


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one output"):
        bp.viz.graph()
    with pytest.raises(TypeError, match="expected a bprop.Tensor"):
        bp.viz.graph(np.ones(2))
    with pytest.raises(TypeError, match="params"):
        bp.viz.graph(f64([1.0]), params={"a": 1.0})


def test_render_without_dot_names_graphviz(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    g = bp.viz.graph(small()[-1])
    with pytest.raises(RuntimeError, match="graphviz"):
        g.render(tmp_path / "g.png")
    assert g._repr_svg_() is None  # Jupyter falls back to text
    assert str(g) == g.source
    g.render(tmp_path / "g.dot")  # the DOT text needs no Graphviz
    assert (tmp_path / "g.dot").read_text() == g.source


@needs_dot
@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_render(tmp_path, fmt):
    w, b, _, h, loss = small()
    loss.backward(retain_graph=True)
    g = bp.viz.graph(loss, params={"w": w, "b": b, "h": h}, show_grads=True)
    path = g.render(tmp_path / f"g.{fmt}")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") if fmt == "png" else b"<svg" in data
    assert "<svg" in g._repr_svg_()


@needs_dot
def test_lecture_script_renders_both_pictures(tmp_path):
    script = ROOT / "examples" / "lecture_graph.py"
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, capture_output=True)
    for stem in ("lecture-321", "lecture-321-grads"):
        assert (tmp_path / f"{stem}.png").read_bytes().startswith(b"\x89PNG")
        src = (tmp_path / f"{stem}.dot").read_text()
        for name in ("x\n", "W1\n", "b1\n", "h = tanh", "W2\n", "b2\n", "y_hat = add", "L\n"):
            assert any(v.startswith(name) for v in nodes(src).values()), (stem, name)
    grads = (tmp_path / "lecture-321-grads.dot").read_text()
    assert "‖δ‖" in grads and "‖grad‖" in grads
    assert "‖" not in (tmp_path / "lecture-321.dot").read_text()


def test_lecture_script_without_dot_exits_nonzero(tmp_path):
    # The rest of the environment stays (the sanitizer run's LD_PRELOAD, for one); only the
    # search path loses `dot`.
    env = dict(os.environ, PATH=str(tmp_path), PYTHONPATH="")
    script = ROOT / "examples" / "lecture_graph.py"
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1 and "apt-get install graphviz" in result.stderr
