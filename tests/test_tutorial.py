"""docs/tutorial.md's code: examples/lecture_by_hand.py derives each of the lecture's
gradients by hand with numpy and asserts that bprop gets the same numbers."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "lecture_by_hand.py"


def test_lecture_by_hand_runs_and_agrees():
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("hand == bprop") == 7, result.stdout


def test_tutorial_includes_every_marked_section():
    """Every [name] ... [end name] pair in the script is included by the tutorial, and
    every marker the tutorial names exists in the script (Sphinx would fail otherwise)."""
    code = SCRIPT.read_text()
    tutorial = (ROOT / "docs" / "tutorial.md").read_text()
    starts = [line.strip()[3:-1] for line in code.splitlines() if line.strip().startswith("# [")]
    names = [s for s in starts if not s.startswith("end ")]
    assert names and all(f"end {n}" in starts for n in names)
    for name in names:
        assert f'"# [{name}]"' in tutorial, name
