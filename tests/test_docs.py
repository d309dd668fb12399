"""The docs never cite a file, heading or test that does not exist.

README.md, CONTRIBUTING.md and docs/*.md name repository paths in Markdown links and images,
in inline code (`examples/digits.py`, `cpp/src/ops/{shape,index}.cpp`, `bprop/io.h`), in shell
blocks (`python benchmarks/suite.py`), and tests by name (`tests/test_ops.py::test_x` or a
bare `test_x`). Each must exist: a path on disk (or under a git-ignored output directory such
as benchmarks/results/, which a documented command writes), a heading for a `#anchor`, a
`def test_...` for a test name.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]

# A token is a repository path when it starts with one of these (or is one of the top-level
# files); anything else in backticks (`bp.grad`, `net.png`, `build/docs`) is not checked.
TOP_DIRS = ("cpp/", "python/", "tests/", "examples/", "benchmarks/", "docs/", "scripts/", "fuzz/",
            "cmake/", ".ci/")  # fmt: skip
TOP_FILES = {"README.md", "CONTRIBUTING.md", "LICENSE", "pyproject.toml", "CMakeLists.txt",
             ".pre-commit-config.yaml", ".clang-format", ".gitignore"}  # fmt: skip

FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
TEST_NAME = re.compile(r"^test_\w+$")


def split_markdown(text: str) -> tuple[list[str], list[str]]:
    """The prose lines and the fenced-code lines of a Markdown text."""
    prose, code, fenced = [], [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
        elif fenced:
            code.append(line)
        else:
            prose.append(line)
    return prose, code


def slug(heading: str) -> str:
    """GitHub's (and MyST's) anchor for a heading."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    prose, _ = split_markdown(path.read_text(encoding="utf-8"))
    return {slug(m.group(2)) for line in prose if (m := HEADING.match(line))}


def expand_braces(token: str) -> list[str]:
    """`cpp/src/{nn,optim}/` -> `cpp/src/nn/`, `cpp/src/optim/` (shell-style, unnested)."""
    parts = re.split(r"\{([^{}]*,[^{}]*)\}", token)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def ignored_dirs() -> list[str]:
    """Directories .gitignore names: the outputs documented commands write (benchmarks/results/)."""
    lines = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    return [line.strip().strip("/") + "/" for line in lines if line.strip().endswith("/")]


def path_problem(token: str) -> str | None:
    """Why a repository path named in the docs is wrong, or None if it is fine."""
    path, _, test = token.partition("::")
    if path.startswith("bprop/") and path.endswith(".h"):  # an include path: <bprop/io.h>
        path = "cpp/include/" + path
    for candidate in expand_braces(path):
        if "*" in candidate:
            if not list(ROOT.glob(candidate)):
                return f"{candidate} matches no file"
            continue
        if not (ROOT / candidate).exists():
            if any(candidate.startswith(d) for d in ignored_dirs()):
                continue  # written by a command the docs give
            return f"{candidate} does not exist"
        if test and not re.search(
            rf"^\s*(def|class) {re.escape(test.split('::')[-1].split('[')[0])}\b",
            (ROOT / candidate).read_text(encoding="utf-8"),
            re.MULTILINE,
        ):
            return f"{candidate} defines no {test}"
    return None


def defined_test_names() -> set[str]:
    names = set()
    for f in (ROOT / "tests").glob("test_*.py"):
        names |= set(re.findall(r"^\s*def (test_\w+)", f.read_text(encoding="utf-8"), re.MULTILINE))
    return names


def candidate_tokens(text: str) -> list[str]:
    """The words of a code span or shell line that look like repository paths or test names."""
    out = []
    for word in re.split(r"[\s=<>\"']+", text):
        word = word.strip("()[],;:.").removeprefix("./")
        if word.startswith(TOP_DIRS) or word in TOP_FILES or TEST_NAME.match(word):
            out.append(word)
        elif word.startswith("bprop/") and word.endswith(".h"):
            out.append(word)
    return out


def problems(path: Path) -> list[str]:
    """Every link, path, anchor and test name in one Markdown file that does not resolve."""
    text = path.read_text(encoding="utf-8")
    prose, code = split_markdown(text)
    found: list[str] = []
    tests = None

    def check(token: str) -> None:
        nonlocal tests
        if TEST_NAME.match(token):
            tests = tests if tests is not None else defined_test_names()
            if token not in tests:
                found.append(f"no test named {token} in tests/")
        elif why := path_problem(token):
            found.append(why)

    for line in prose:
        for target in LINK.findall(line):
            if re.match(r"^[a-z]+:", target):  # https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                found.append(f"link {target}: {file} does not exist")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                found.append(f"link {target}: no heading #{anchor} in {dest.name}")
        for _, span in CODE_SPAN.findall(line):
            for token in candidate_tokens(span):
                check(token)
    for line in code:
        for token in candidate_tokens(line):
            if not TEST_NAME.match(token):  # code blocks may define new tests in examples
                check(token)
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_link_and_test_name_exists(doc: Path) -> None:
    assert doc.exists()
    assert problems(doc) == []


def test_the_docs_checked_include_the_guides() -> None:
    names = {str(p.relative_to(ROOT)) for p in DOCS}
    assert {"README.md", "CONTRIBUTING.md", "docs/tutorial.md", "docs/cpp.md"} <= names


def test_bogus_paths_links_and_test_names_are_caught(tmp_path: Path) -> None:
    doc = tmp_path / "bogus.md"
    doc.write_text(
        "# Title\n\n"
        "Run `python examples/no_such_example.py`, see [the guide](no-such-page.md), "
        "[a heading](#no-such-heading), `tests/test_ops.py::test_no_such_test`, "
        "`test_no_such_test_anywhere`, `cpp/src/{ops,no_such_dir}/` and `bprop/no_such.h`.\n\n"
        "```bash\npython benchmarks/no_such_bench.py\n```\n"
        "Fine: `examples/digits.py`, `tests/test_docs.py::test_bogus_paths_links_and_test_names_"
        "are_caught`, [title](#title), `benchmarks/results/suite.json`, `bprop/io.h`.\n",
        encoding="utf-8",
    )
    assert problems(doc) == [
        "link no-such-page.md: no-such-page.md does not exist",
        "link #no-such-heading: no heading #no-such-heading in bogus.md",
        "examples/no_such_example.py does not exist",
        "tests/test_ops.py defines no test_no_such_test",
        "no test named test_no_such_test_anywhere in tests/",
        "cpp/src/no_such_dir/ does not exist",
        "cpp/include/bprop/no_such.h does not exist",
        "benchmarks/no_such_bench.py does not exist",
    ]
