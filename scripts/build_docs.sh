#!/usr/bin/env bash
# Builds the HTML docs (API reference from docstrings, tutorial, C++ guide) into build/docs.
# Warnings are errors. Needs the package and the docs tools: pip install ".[docs]"
set -euo pipefail
cd "$(dirname "$0")/.."
python -m sphinx -E -W --keep-going -b html docs build/docs "$@"
echo "docs: build/docs/index.html"
