"""Sphinx configuration: the API reference from docstrings, Markdown pages through MyST.

Build with `bash scripts/build_docs.sh` (warnings are errors). The package must be importable
(`pip install ".[docs]"`): autodoc reads the docstrings of the installed bprop, including those
the pybind11 bindings give bprop._core.
"""

from __future__ import annotations

import bprop

project = "bprop"
author = "the bprop developers"
copyright = "2026, the bprop developers"  # noqa: A001  (Sphinx's name)
version = release = bprop.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Docstrings here are prose with `name` for code; render `...` as inline code, not as RST's
# "title reference" italics.
default_role = "code"

autodoc_default_options = {"members": True, "undoc-members": True}
autodoc_member_order = "bysource"
# pybind11 writes the C++ signature as the first docstring line; autodoc turns it into the
# signature shown.
autodoc_docstring_signature = True
autodoc_typehints = "description"

myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

html_theme = "alabaster"
html_title = f"bprop {release}"
