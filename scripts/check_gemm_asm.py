"""Checks the GEMM micro-kernels' inner loops in the compiled assembly.

Compiles cpp/src/kernels/gemm_micro_<isa>.cpp with the flags cpp/CMakeLists.txt gives it
(and -O3, as the Release build) to assembly, finds each candidate micro-kernel's k loop (the
innermost loop holding its FMAs) and checks Note [Micro-kernel inner loop] in gemm_micro.inc:

- the loop unrolled as gemm_micro.inc's pragma asks (U steps a pass), each step MR * NV
  multiply-adds (FMAs; a multiply and an add on SSE2);
- MR broadcasts of A that read memory (a load-port instruction, not a shuffle on an FMA port),
  or FMAs whose A operand is an embedded broadcast;
- no spills: nothing in the loop reads or writes the stack;
- on FMA paths, no separate multiply or add (an FMA the compiler did not contract).

Run: python scripts/check_gemm_asm.py [--cxx g++] [--verbose]. Exits 1 on a failed check.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KERNELS = ROOT / "cpp" / "src" / "kernels"
ISAS = ("avx512", "avx2", "scalar")

# micro_tile<float, 12, 2, 1>, or micro<float, 12, 2> / micro_unpacked_a<...> /
# micro_columns_a<...> where the compiler inlined it: the mangled name carries T, MR, NV and
# where A lies (gemm_micro.inc's kARows 0, kAPanel 1, kAColumns 2).
TILE_SYMBOL = re.compile(r"micro_tileI([fd])Li(\d+)ELi(\d+)ELi([012])E")
WRAPPER_SYMBOL = re.compile(r"\d(micro|micro_unpacked_a|micro_columns_a)I([fd])Li(\d+)ELi(\d+)EE")
A_LAYOUTS = {"0": "A in place", "1": "packed A", "2": "A's columns in place"}
WRAPPER_LAYOUTS = {"micro_unpacked_a": "0", "micro": "1", "micro_columns_a": "2"}


@dataclass
class Loop:
    symbol: str
    dtype: str
    mr: int
    nv: int
    packed_a: bool
    body: list[str]
    frame_pointer: bool = False  # the function keeps %rbp as its frame pointer


def compile_options(isa: str) -> list[str]:
    """The COMPILE_OPTIONS cpp/CMakeLists.txt sets on gemm_micro_<isa>.cpp."""
    cmake = (ROOT / "cpp" / "CMakeLists.txt").read_text()
    pattern = re.compile(
        r"set_source_files_properties\(([^)]*?)PROPERTIES\s+COMPILE_OPTIONS\s+\"([^\"]*)\"", re.S
    )
    for files, options in pattern.findall(cmake):
        if f"gemm_micro_{isa}.cpp" in files:
            return options.split(";")
    raise SystemExit(f"check_gemm_asm: cpp/CMakeLists.txt sets no options on gemm_micro_{isa}.cpp")


def assemble(cxx: str, isa: str, out_dir: Path) -> str:
    out = out_dir / f"gemm_micro_{isa}.s"
    command = [
        *shlex.split(cxx),
        "-std=c++17",
        "-O3",
        "-DNDEBUG",
        *compile_options(isa),
        f"-I{ROOT / 'cpp' / 'src'}",
        f"-I{ROOT / 'cpp' / 'include'}",
        "-S",
        "-o",
        str(out),
        str(KERNELS / f"gemm_micro_{isa}.cpp"),
    ]
    subprocess.run(command, check=True)
    return out.read_text()


def functions(assembly: str) -> dict[str, list[str]]:
    """Each function's instruction and label lines, by symbol."""
    result: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in assembly.splitlines():
        stripped = line.strip()
        match = re.match(r"^([A-Za-z_.$][\w.$]*):$", stripped)
        if match and not stripped.startswith("."):
            current = result.setdefault(match.group(1), [])
            continue
        if current is None:
            continue
        if stripped.startswith(".cfi_endproc"):
            current = None
        elif stripped and (not stripped.startswith(".") or re.match(r"^\.L\w+:$", stripped)):
            current.append(stripped)
    return result


def innermost_fma_loop(body: list[str], multiply_add: re.Pattern[str]) -> list[str] | None:
    """The k loop: of the label..backward-jump ranges that hold multiply-adds and hold no other
    such range, the one with the most (a compiler may add a one-step loop for the steps an
    unrolled loop leaves over), then the shortest."""
    labels = {line[:-1]: i for i, line in enumerate(body) if re.match(r"^\.L\w+:$", line)}
    ranges = []
    for j, line in enumerate(body):
        match = re.match(r"^j\w+\s+(\.L\w+)$", line)
        if not match or match.group(1) not in labels or labels[match.group(1)] >= j:
            continue
        start = labels[match.group(1)] + 1
        if any(multiply_add.search(x) for x in body[start : j + 1]):
            ranges.append((start, j + 1))
    innermost = [
        (a, b)
        for a, b in ranges
        if not any(a <= c and d <= b and (c, d) != (a, b) for c, d in ranges)
    ]
    if not innermost:
        return None

    def fmas(r: tuple[int, int]) -> int:
        return sum(1 for x in body[r[0] : r[1]] if multiply_add.search(x))

    a, b = max(innermost, key=lambda r: (fmas(r), -(r[1] - r[0])))
    return body[a:b]


@functools.cache
def unrolled_steps() -> int:
    """The k steps one pass of the loop computes: the unroll pragma on gemm_micro.inc's k loop."""
    source = (KERNELS / "gemm_micro.inc").read_text()
    match = re.search(r"#pragma GCC unroll (\d+)\n\s*for \(int64_t p = 0; p < kc; \+\+p\)", source)
    if match is None:
        raise SystemExit("check_gemm_asm: no unroll pragma on gemm_micro.inc's k loop")
    return int(match.group(1))


def check_loop(isa: str, loop: Loop) -> list[str]:
    problems = []
    suffix = "ps" if loop.dtype == "f" else "pd"
    fmas = isa != "scalar"
    expected = loop.mr * loop.nv
    text = "\n".join(loop.body)
    # The stack is %rsp, and %rbp where the function made it the frame pointer; otherwise
    # %rbp is one more general register.
    registers = "sp|bp" if loop.frame_pointer else "sp"
    stack = [x for x in loop.body if re.search(rf"\(%[re]?({registers})\b", x)]
    if stack:
        problems.append(f"spills: {len(stack)} stack accesses, e.g. {stack[0]!r}")
    steps = unrolled_steps()
    if fmas:
        count = len(re.findall(rf"\bvfmadd\d+{suffix}\b", text))
        if count != steps * expected:
            problems.append(
                f"{count} FMAs in the loop, expected MR * NV = {expected} a step, {steps} steps"
            )
        loose = re.findall(rf"\bv(mul|add){suffix}\b", text)
        if loose:
            problems.append(f"{len(loose)} separate multiplies/adds: an FMA was not contracted")
        broadcast = "vbroadcastss" if loop.dtype == "f" else "vbroadcastsd"
        from_memory = len(re.findall(rf"\b{broadcast}\s+-?\w*\(", text))
        embedded = len(re.findall(r"\{1to\d+\}", text))
        if from_memory + embedded < steps * loop.mr:
            problems.append(
                f"{from_memory} broadcasts from memory and {embedded} embedded broadcasts in "
                f"the loop, expected at least MR = {loop.mr} a step, {steps} steps"
            )
    else:
        multiplies = len(re.findall(rf"\bmul{suffix}\b", text))
        adds = len(re.findall(rf"\badd{suffix}\b", text))
        if multiplies != steps * expected or adds != steps * expected:
            problems.append(
                f"{multiplies} multiplies and {adds} adds in the loop, expected {expected} of each"
                f" a step, {steps} steps"
            )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cxx", default=os.environ.get("CXX", "c++"))
    parser.add_argument("--verbose", action="store_true", help="print each loop's body")
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for isa in ISAS:
            assembly = assemble(args.cxx, isa, Path(tmp))
            multiply_add = re.compile(r"\bvfmadd\d+p[sd]\b" if isa != "scalar" else r"\bmulp[sd]\b")
            seen = set()
            for symbol, body in functions(assembly).items():
                if match := TILE_SYMBOL.search(symbol):
                    dtype, mr, nv, packed = match.groups()
                elif match := WRAPPER_SYMBOL.search(symbol):
                    wrapper, dtype, mr, nv = match.groups()
                    packed = WRAPPER_LAYOUTS[wrapper]
                else:
                    continue
                key = (dtype, int(mr), int(nv), packed)
                found = innermost_fma_loop(body, multiply_add)
                if found is None or key in seen:
                    continue
                frame_pointer = any(re.match(r"^movq\s+%rsp, %rbp$", x) for x in body)
                loop = Loop(symbol, dtype, int(mr), int(nv), packed == "1", found, frame_pointer)
                problems = check_loop(isa, loop)
                width = {"avx512": 64, "avx2": 32, "scalar": 16}[isa] // (4 if dtype == "f" else 8)
                name = (
                    f"{isa}-{mr}x{int(nv) * width} {'float32' if dtype == 'f' else 'float64'}"
                    f" ({A_LAYOUTS[packed]})"
                )
                status = "ok" if not problems else "FAILED: " + "; ".join(problems)
                steps = unrolled_steps()
                print(f"{name:45} {len(found):3} instructions for {steps} steps  {status}")
                if args.verbose:
                    print("    " + "\n    ".join(found))
                failures += bool(problems)
                seen.add(key)
            if not seen:
                print(f"{isa}: no micro-kernel loop found in the assembly")
                failures += 1
            # Every tile found in one layout of A must be found in all three.
            for dtype, mr, nv in sorted({key[:3] for key in seen}):
                for layout, described in A_LAYOUTS.items():
                    if (dtype, mr, nv, layout) not in seen:
                        print(f"{isa} {dtype} {mr}x{nv} vectors: no loop found for {described}")
                        failures += 1
    print("check_gemm_asm:", "all loops ok" if failures == 0 else f"{failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
