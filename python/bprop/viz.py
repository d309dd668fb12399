"""Pictures of the computational graph: the lecture's credit assignment, visible.

    import bprop as bp
    g = bp.viz.graph(L, params={"W1": W1, "b1": b1, "a": a, "h": h})
    g.render("net.png")                          # needs Graphviz's `dot` on PATH
    L.backward(retain_graph=True)
    bp.viz.graph(L, params=..., show_grads=True).render("net-grads.svg")

What is drawn comes from the autograd graph itself (``grad_fn`` and ``next_functions``), the
same structure ``backward()`` walks:

- an **op node** per ``grad_fn`` (``MulBackward0`` is shown as ``mul``); edges run in the
  forward direction, from an input to the op that consumed it, one edge per use, so a value
  used twice (``x * x``, a shared hidden layer) has two out-edges;
- a **leaf node** per ``AccumulateGrad``: the tensors that require grad. Name, shape and
  dtype are shown for the leaves passed in ``params``; the others are drawn as ``leaf<k>``;
- an **output node** per tensor passed in, with its shape and dtype;
- inputs that do not require grad are not part of the autograd graph; ``show_constants=True``
  marks each such input slot with a small grey ``constant`` node.

Naming an intermediate tensor in ``params`` (``{"h": h}``) labels the op that produced it with
the name and its shape.

``show_grads=True`` shows how blame flows back. A leaf shows ``‖grad‖``, the norm of the
``.grad`` that ``backward()`` left on it (``grad: None`` before any backward). A named
intermediate shows ``‖δ‖``, the norm of the lecture's local error δ = ∂L/∂(that tensor),
computed with ``bp.grad(outputs, intermediates, retain_graph=True)``; this needs scalar outputs
and a graph that is still alive, so draw it before ``backward()`` or after
``backward(retain_graph=True)``. Every shown norm is coloured on one sequential five-step scale
(yellow to dark red) by its ratio to the largest shown norm; a legend node gives the scale.

The DOT text is deterministic: node ids are given in depth-first order from the outputs,
following ``next_functions`` in order. Rendering runs the Graphviz ``dot`` program; nothing
else is needed (not the ``graphviz`` Python package).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from . import _core

__all__ = ["Graph", "graph"]

# ColorBrewer YlOrRd, 5 classes: a sequential scale, light = little blame, dark = most blame.
PALETTE = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
_DARK = {"#f03b20", "#bd0026"}  # white text on these

_INSTALL_HINT = (
    "install Graphviz (Debian/Ubuntu: `apt-get install graphviz`; macOS: "
    "`brew install graphviz`; conda: `conda install graphviz`), or use `.source` for the DOT text"
)


def _dot_executable() -> str:
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError(
            "bprop.viz: rendering needs the Graphviz `dot` program, which is not on PATH; "
            + _INSTALL_HINT
        )
    return exe


class Graph:
    """A drawn graph: ``.source`` is the DOT text; ``render`` and ``pipe`` run Graphviz."""

    def __init__(self, source: str):
        self.source = source

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        nodes = sum(1 for line in self.source.splitlines() if re.match(r"\s+\w+ \[label=", line))
        return f"<bprop.viz.Graph with {nodes} nodes; .source holds the DOT text>"

    def pipe(self, format: str = "svg") -> bytes:  # noqa: A002  (Graphviz's name)
        """Run ``dot -T<format>`` on the source and return the rendered bytes."""
        result = subprocess.run(
            [_dot_executable(), f"-T{format}"],
            input=self.source.encode("utf-8"),
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"bprop.viz: `dot -T{format}` failed: {result.stderr.decode(errors='replace')}"
            )
        return result.stdout

    def render(self, path, format: str | None = None) -> Path:  # noqa: A002
        """Write the picture to ``path``; the format defaults to the suffix (png, svg, pdf)."""
        path = Path(path)
        fmt = format or path.suffix.lstrip(".").lower()
        if not fmt:
            raise ValueError(f"bprop.viz: no format given and {str(path)!r} has no suffix")
        if fmt == "dot":
            path.write_text(self.source, encoding="utf-8")
        else:
            path.write_bytes(self.pipe(fmt))
        return path

    def _repr_svg_(self):
        """Jupyter shows the picture when `dot` is installed, the DOT text otherwise."""
        if shutil.which("dot") is None:
            return None
        return self.pipe("svg").decode("utf-8")


def _quote(text: str) -> str:
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def _op_label(node_name: str) -> str:
    """``MulBackward0`` -> ``mul``, ``LogSoftmaxBackward0`` -> ``log_softmax``."""
    base = re.sub(r"Backward\d*$", "", node_name) or node_name
    return re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()


def _describe(t) -> str:
    dtype = str(t.dtype).removeprefix("bprop.")
    return f"{tuple(t.shape)} {dtype}"


def _norm(t) -> float:
    return float(np.linalg.norm(np.asarray(t.detach().numpy(), dtype=np.float64)))


def _colour(norm: float, largest: float) -> str:
    ratio = norm / largest if largest > 0 else 0.0
    return PALETTE[min(len(PALETTE) - 1, int(ratio * len(PALETTE)))]


def _flatten_outputs(outputs):
    if len(outputs) == 1 and isinstance(outputs[0], (list, tuple)):
        outputs = tuple(outputs[0])
    if not outputs:
        raise ValueError("bprop.viz.graph: give at least one output tensor")
    for i, out in enumerate(outputs):
        if not isinstance(out, _core.Tensor):
            raise TypeError(
                f"bprop.viz.graph: output {i} is a {type(out).__name__}, expected a bprop.Tensor"
            )
    return outputs


def _named(params) -> dict:
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        params = dict(params.named_parameters())
    named = dict(params)
    for name, t in named.items():
        if not isinstance(t, _core.Tensor):
            raise TypeError(
                f"bprop.viz.graph: params[{name!r}] is a {type(t).__name__}, expected a Tensor"
            )
    return named


def graph(
    *outputs,
    params=None,
    show_grads: bool = False,
    show_constants: bool = False,
    rankdir: str = "LR",
) -> Graph:
    """Draw the autograd graph that produced ``outputs``; see the module docstring.

    ``params``: ``{name: tensor}`` (or an ``nn.Module``) naming leaves and intermediates.
    ``show_grads``: label and colour leaves by ``‖grad‖`` and named intermediates by ``‖δ‖``.
    ``show_constants``: draw inputs that do not require grad as grey ``constant`` nodes.
    ``rankdir``: Graphviz layout direction, ``"LR"`` (inputs left) or ``"TB"`` (inputs top).
    """
    outputs = _flatten_outputs(outputs)
    named = _named(params)
    keep = []  # keeps every node wrapper alive, so id() stays unique while we draw

    def output_name(i, out):
        for name, t in named.items():
            if t._is_same(out):
                return name
        return "output" if len(outputs) == 1 else f"output{i}"

    out_names = [output_name(i, out) for i, out in enumerate(outputs)]

    # Which node stands for which named tensor: an intermediate by the op that produced it, a
    # leaf by its AccumulateGrad (matched below, through the node's .variable).
    named_leaves, op_of = [], {}
    for name, t in named.items():
        if name in out_names:
            continue
        if t.grad_fn is not None:
            keep.append(t.grad_fn)
            op_of.setdefault(id(t.grad_fn), (name, t))
        elif t.requires_grad:
            named_leaves.append((name, t))

    # Depth-first from the outputs, next_functions in order: stable ids for stable DOT.
    ids, order = {}, []
    stack = [out.grad_fn for out in reversed(outputs) if out.grad_fn is not None]
    while stack:
        node = stack.pop()
        if id(node) in ids:
            continue
        keep.append(node)
        ids[id(node)] = f"n{len(order)}"
        order.append(node)
        children = [child for child, _ in node.next_functions if child is not None]
        stack.extend(c for c in reversed(children) if id(c) not in ids)
    leaf_of = {}
    for node in order:
        leaf = node.variable
        if leaf is not None:
            match = next(((name, t) for name, t in named_leaves if t._is_same(leaf)), None)
            if match is not None:
                leaf_of[id(node)] = match

    # Gradient norms: leaves from .grad, named intermediates from bp.grad (the local error δ).
    norms = {}
    if show_grads:
        for key, (_, t) in leaf_of.items():
            if t.grad is not None:
                norms[key] = _norm(t.grad)
        inner = [(key, t) for key, (_, t) in op_of.items() if key in ids]
        if inner:
            norms.update(_deltas(outputs, inner))
    largest = max(norms.values(), default=0.0)

    def grad_attrs(key, word):
        if not show_grads:
            return "", ""
        if key not in norms:
            return f"\n{word}: None", ""
        fill = _colour(norms[key], largest)
        font = ', fontcolor="white"' if fill in _DARK else ""
        return f"\n‖{word}‖ = {norms[key]:.4g}", f', fillcolor="{fill}"{font}'

    lines = [
        "digraph bprop {",
        f"  graph [rankdir={rankdir}, nodesep=0.3, ranksep=0.45];",
        '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica",'
        " fontsize=11];",
        '  edge [color="#555555", arrowsize=0.7];',
    ]
    edges = []
    unnamed_leaves = 0
    constants = 0
    for node in order:
        key, nid = id(node), ids[id(node)]
        if node.name() == "AccumulateGrad":
            if key in leaf_of:
                name, t = leaf_of[key]
                label = f"{name}\n{_describe(t)}\nrequires_grad"
            else:
                label = f"leaf{unnamed_leaves}\n(name it in params= to see its shape)"
                unnamed_leaves += 1
            extra, attrs = grad_attrs(key, "grad")
            if not attrs:
                attrs = ', fillcolor="#dbe9f6"'
            lines.append(f"  {nid} [label={_quote(label + extra)}, shape=ellipse{attrs}];")
        else:
            op = _op_label(node.name())
            if key in op_of:
                name, t = op_of[key]
                label = f"{name} = {op}\n{_describe(t)}"
                extra, attrs = grad_attrs(key, "δ")
                label += extra
            else:
                label, attrs = op, ', fillcolor="#eeeeee"'
            lines.append(f"  {nid} [label={_quote(label)}{attrs}];")
        for child, _ in node.next_functions:
            if child is not None:
                edges.append(f"  {ids[id(child)]} -> {nid};")
            elif show_constants:
                cid = f"c{constants}"
                constants += 1
                lines.append(
                    f'  {cid} [label="constant", shape=plaintext, style="", fontcolor="#888888",'
                    " fontsize=9];"
                )
                edges.append(f'  {cid} -> {nid} [style=dashed, color="#aaaaaa"];')

    for i, (out, name) in enumerate(zip(outputs, out_names)):
        label = f"{name}\n{_describe(out)}"
        if out.grad_fn is None:
            label += "\nrequires_grad" if out.requires_grad else "\n(no grad_fn: not recorded)"
        lines.append(f'  out{i} [label={_quote(label)}, shape=doubleoctagon, fillcolor="#c7e9c0"];')
        if out.grad_fn is not None:
            edges.append(f"  {ids[id(out.grad_fn)]} -> out{i};")

    if show_grads and norms:
        lines.append(_legend(largest))
    lines.extend(edges)
    lines.append("}")
    return Graph("\n".join(lines) + "\n")


def _deltas(outputs, inner) -> dict:
    """‖∂L/∂t‖ for each named intermediate t, by bp.grad on the still-alive graph."""
    from .autograd import grad as autograd_grad

    for i, out in enumerate(outputs):
        if out.numel() != 1:
            raise ValueError(
                f"bprop.viz.graph: show_grads for named intermediates needs scalar outputs "
                f"(like backward()); output {i} has shape {tuple(out.shape)}"
            )
    roots = [out for out in outputs if out.grad_fn is not None]
    try:
        grads = autograd_grad(roots, [t for _, t in inner], retain_graph=True, allow_unused=True)
    except RuntimeError as err:
        raise RuntimeError(
            "bprop.viz.graph: could not compute δ for the named intermediates; their graph "
            "must still be alive: draw before backward(), or call "
            f"backward(retain_graph=True) first ({err})"
        ) from err
    return {key: _norm(g) for (key, _), g in zip(inner, grads) if g is not None}


def _legend(largest: float) -> str:
    step = 100 // len(PALETTE)
    rows = []
    for k, fill in enumerate(PALETTE):
        upper = "100%]" if k == len(PALETTE) - 1 else f"{(k + 1) * step}%)"
        font = ' COLOR="white"' if fill in _DARK else ""
        rows.append(
            f'<TR><TD BGCOLOR="{fill}"><FONT POINT-SIZE="9"{font}>[{k * step}%, {upper}'
            "</FONT></TD></TR>"
        )
    header = (
        f'<TR><TD BORDER="0"><FONT POINT-SIZE="9">‖grad‖ or ‖δ‖ / largest<BR/>'
        f"(largest = {largest:.4g})</FONT></TD></TR>"
    )
    table = (
        '<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">'
        + header
        + "".join(rows)
        + "</TABLE>"
    )
    return f'  legend [label=<{table}>, shape=plaintext, style=""];'
