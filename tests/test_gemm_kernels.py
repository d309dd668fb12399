"""The GEMM's candidate micro-kernels and how one is chosen (Note [GEMM micro-kernel choice]
in cpp/src/kernels/gemm.cpp): every candidate on every instruction-set path gives the same
bits and the right values, on odd sizes, transposes and strides; the first-use race is cached
in ~/.cache/bprop (XDG_CACHE_HOME), skipped by BPROP_TUNE=0, redone by BPROP_TUNE=refresh;
BPROP_GEMM_KERNEL and the test hook name one; the compiled inner loops pass
scripts/check_gemm_asm.py."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import bprop as bp
import pytest
from conftest import run_python_on_isa

ROOT = Path(__file__).resolve().parent.parent

# Every candidate of one instruction-set path on products of odd sizes, with transposed and
# strided operands: each candidate's bits against the first's, and the first against float64.
EVERY_CANDIDATE = """
import json, sys
import bprop as bp, numpy as np
rng = np.random.default_rng(3)
shapes = [(1, 1, 300), (13, 7, 5), (64, 64, 64), (97, 131, 61), (5, 257, 33), (300, 70, 200),
          (64, 784, 128), (33, 600, 529), (40, 70, 50), (40, 70, 600)]
report = {"isa": bp._core._isa(), "kernels": {}, "worst_error": {}}
for dtype in (bp.float32, bp.float64):
    names = bp._core._gemm_kernels(dtype)
    report["kernels"][str(dtype).split(".")[-1]] = names
    worst = 0.0
    for m, n, k in shapes:
        a64, b64 = rng.standard_normal((m, k)), rng.standard_normal((k, n))
        operands = {
            "plain": (bp.tensor(a64, dtype=dtype), bp.tensor(b64, dtype=dtype)),
            "transposed": (bp.tensor(a64.T.copy(), dtype=dtype).T,
                           bp.tensor(b64.T.copy(), dtype=dtype).T),
            "strided": (bp.tensor(np.repeat(np.repeat(a64, 2, 0), 2, 1), dtype=dtype)[::2, ::2],
                        bp.tensor(np.repeat(np.repeat(b64, 2, 0), 2, 1), dtype=dtype)[::2, ::2]),
        }
        for layout, (a, b) in operands.items():
            results = []
            for name in names:
                bp._core._set_gemm_kernel(dtype, name)
                results.append((a @ b).numpy())
            bp._core._set_gemm_kernel(dtype, "")
            for name, got in zip(names, results):
                if not np.array_equal(got, results[0]):
                    sys.exit(f"{name} differs from {names[0]}: {m}x{k}x{n} {layout} {dtype}")
            exact = a.numpy().astype(np.float64) @ b.numpy().astype(np.float64)
            scale = np.sqrt(k) + np.abs(exact)
            worst = max(worst, float(np.max(np.abs(results[0] - exact) / scale)))
    report["worst_error"][str(dtype).split(".")[-1]] = worst
print(json.dumps(report))
"""


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_every_candidate_on_every_path_gives_the_same_right_bits(isa):
    run = run_python_on_isa(EVERY_CANDIDATE, isa, timeout=300)
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["isa"] == isa
    for dtype in ("float32", "float64"):
        names = report["kernels"][dtype]
        assert len(names) >= 2 and all(name.startswith(f"{isa}-") for name in names)
    assert report["worst_error"]["float32"] < 1e-5
    assert report["worst_error"]["float64"] < 1e-13


CONFIG = "import bprop as bp, json; print(json.dumps(bp.show_config(mode='dicts')))"


def gemm_config(env):
    run = subprocess.run(
        [sys.executable, "-c", CONFIG], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    config = json.loads(run.stdout.strip().splitlines()[-1])
    return config["gemm_float32"], config["gemm_float64"]


def clean_env(**settings):
    env = {k: v for k, v in os.environ.items() if k not in ("BPROP_TUNE", "BPROP_GEMM_KERNEL")}
    env.update(settings)
    return env


def test_the_race_is_cached_per_machine_and_read_back(tmp_path):
    env = clean_env(XDG_CACHE_HOME=str(tmp_path))
    f32, f64 = gemm_config(env)
    assert f32["chosen_by"].startswith("raced at first use (")
    cache = tmp_path / "bprop" / "gemm-kernels"
    lines = cache.read_text().splitlines()
    assert len(lines) == 1
    key, f32_name, f64_name, speeds = lines[0].split("\t")
    assert key.startswith(bp.show_config(mode="dicts")["cpu"] + "|")
    assert (f32_name, f64_name) == (f32["kernel"], f64["kernel"])
    # The race's speed of every candidate, relative to the first (Note [Edge-aware choice]).
    # In units of 1/10000, integers whatever the locale.
    assert [int(s) / 10000 for s in speeds.split(",")] == pytest.approx(f32["speeds"], abs=1e-4)
    assert len(f32["speeds"]) == len(f32["candidates"]) and f32["speeds"][0] == 1.0
    # measured in a 50 ms race: positive and finite, not in any band (a loaded machine)
    assert all(0 < speed < math.inf for speed in f32["speeds"])
    # Another machine's line stays; this machine's is read back, not raced again.
    cache.write_text("Some Other CPU|1|2|x\tx-1x1\tx-1x1\n" + lines[0] + "\n")
    f32_again, _ = gemm_config(env)
    assert f32_again["chosen_by"] == f"cached in {cache}"
    assert f32_again["kernel"] == f32["kernel"]
    assert f32_again["speeds"] == pytest.approx(f32["speeds"], abs=1e-4)
    # BPROP_TUNE=refresh races again and rewrites this machine's line only.
    f32_refreshed, _ = gemm_config(clean_env(XDG_CACHE_HOME=str(tmp_path), BPROP_TUNE="refresh"))
    assert f32_refreshed["chosen_by"].startswith("raced at first use (")
    text = cache.read_text()
    assert text.startswith("Some Other CPU|1|2|x\tx-1x1\tx-1x1\n") and text.count("\n") == 2


def test_a_cached_name_this_build_lacks_is_raced_again(tmp_path):
    env = clean_env(XDG_CACHE_HOME=str(tmp_path))
    gemm_config(env)
    cache = tmp_path / "bprop" / "gemm-kernels"
    key = cache.read_text().split("\t")[0]
    cache.write_text(f"{key}\tavx512-99x1\tavx512-99x1\n")
    f32, _ = gemm_config(env)
    assert f32["chosen_by"].startswith("raced at first use (")


@pytest.mark.parametrize(
    "speeds", ["", "10000", "10000,x", "10000,-2", "10000,1.5", "10000,0", "1,1,1,1,1"]
)
def test_a_cached_line_without_one_good_speed_per_candidate_is_raced_again(tmp_path, speeds):
    env = clean_env(XDG_CACHE_HOME=str(tmp_path))
    gemm_config(env)
    cache = tmp_path / "bprop" / "gemm-kernels"
    key, f32_name, f64_name, _ = cache.read_text().rstrip("\n").split("\t")
    # Each is wrong on every machine: every path has 2 to 4 candidates.
    cache.write_text(f"{key}\t{f32_name}\t{f64_name}\t{speeds}\n")
    f32_again, _ = gemm_config(env)
    assert f32_again["chosen_by"].startswith("raced at first use (")


KERNEL_FOR = (
    "import bprop as bp, json; print(json.dumps([bp._core._gemm_kernel_for(bp.{dtype}, m, n) "
    "for m, n in {shapes}]))"
)


def kernels_for(env, dtype, shapes):
    run = subprocess.run(
        [sys.executable, "-c", KERNEL_FOR.format(dtype=dtype, shapes=shapes)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_each_product_runs_the_candidate_fastest_for_its_shape(tmp_path, dtype):
    # Note [Edge-aware choice]: from the cached speeds, an m x n product runs the candidate
    # whose tiles, partial ones counted whole, take the least time; the chosen one unless
    # another saves 3%. BPROP_GEMM_KERNEL's choice holds for every shape.
    f32, f64 = gemm_config(clean_env(XDG_CACHE_HOME=str(tmp_path)))  # races, writes the cache
    names = {"float32": f32, "float64": f64}[dtype]["candidates"]
    tiles = [tuple(int(x) for x in name.split("-")[1].split("x")) for name in names]
    nr_first = tiles[0][1]
    other = next((i for i, (_, nr) in enumerate(tiles) if nr % nr_first and nr_first % nr), None)
    if other is None:
        pytest.skip(f"this machine's candidates {names} pad no shape differently")
    nr_other = tiles[other][1]
    m = 8 * math.lcm(*(mr for mr, _ in tiles))  # no candidate pads the rows
    n_other, n_first = nr_other, 2 * nr_first  # each a multiple of one of the two NRs only
    assert n_first % nr_other and n_other % nr_first
    cache = tmp_path / "bprop" / "gemm-kernels"
    key = cache.read_text().split("\t")[0]

    def kernels_with(speeds, **settings):
        text = ",".join(str(round(speed * 10000)) for speed in speeds)
        cache.write_text(f"{key}\t{f32['candidates'][0]}\t{f64['candidates'][0]}\t{text}\n")
        env = clean_env(XDG_CACHE_HOME=str(tmp_path), **settings)
        return kernels_for(env, dtype, [(m, n_other), (m, n_first)])

    equal = kernels_with([1.0] * len(names))
    assert n_other % tiles[names.index(equal[0])][1] == 0, equal
    assert n_first % tiles[names.index(equal[1])][1] == 0, equal
    # The others a third as fast: the first's padding costs less than their slowness.
    assert kernels_with([1.0] + [1 / 3] * (len(names) - 1)) == [names[0], names[0]]
    # The other twice as fast: it runs even a shape the first would not pad.
    speeds = [1.0] * len(names)
    speeds[other] = 2.0
    assert kernels_with(speeds) == [names[other], names[other]]
    forced = kernels_with(
        speeds, BPROP_GEMM_KERNEL=f"{f32['candidates'][0]},{f64['candidates'][0]}"
    )
    assert forced == [names[0], names[0]]


def test_bprop_tune_0_takes_the_default_and_writes_nothing(tmp_path):
    f32, f64 = gemm_config(clean_env(XDG_CACHE_HOME=str(tmp_path), BPROP_TUNE="0"))
    assert f32["chosen_by"] == "default (BPROP_TUNE=0)"
    assert f32["kernel"] == bp._core._gemm_kernels(bp.float32)[0]
    assert f64["kernel"] == bp._core._gemm_kernels(bp.float64)[0]
    assert not (tmp_path / "bprop").exists()


def test_an_unwritable_cache_costs_only_the_race(tmp_path):
    # The cache folder can't be made: its parent is a file (which stops root too).
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    f32, _ = gemm_config(clean_env(XDG_CACHE_HOME=str(blocker)))
    assert f32["chosen_by"].startswith("raced at first use (")
    assert blocker.read_text() == ""
    f32_again, _ = gemm_config(clean_env(XDG_CACHE_HOME=str(blocker)))
    assert f32_again["chosen_by"].startswith("raced at first use (")  # nothing was cached


def test_no_home_at_all_still_races(tmp_path):
    env = clean_env()
    env.pop("XDG_CACHE_HOME", None)
    env.pop("HOME", None)
    f32, _ = gemm_config(env)
    assert f32["chosen_by"].startswith("raced at first use (")


def test_bprop_gemm_kernel_names_the_candidates(tmp_path):
    last32 = bp._core._gemm_kernels(bp.float32)[-1]
    last64 = bp._core._gemm_kernels(bp.float64)[-1]
    env = clean_env(XDG_CACHE_HOME=str(tmp_path), BPROP_GEMM_KERNEL=f"{last32},{last64}")
    f32, f64 = gemm_config(env)
    assert (f32["kernel"], f64["kernel"]) == (last32, last64)
    assert f32["chosen_by"] == "BPROP_GEMM_KERNEL"
    env["BPROP_GEMM_KERNEL"] = "avx512-99x1"
    run = subprocess.run(
        [sys.executable, "-c", "import bprop as bp; bp.ones(64, 64) @ bp.ones(64, 64)"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode != 0
    assert "BPROP_GEMM_KERNEL=avx512-99x1: 'avx512-99x1' is not one of" in run.stderr
    assert last32 in run.stderr


def test_the_test_hook_switches_and_restores_the_kernel():
    names = bp._core._gemm_kernels(bp.float32)
    chosen = bp.show_config(mode="dicts")["gemm_float32"]["kernel"]
    try:
        for name in names:
            bp._core._set_gemm_kernel(bp.float32, name)
            gemm = bp.show_config(mode="dicts")["gemm_float32"]
            assert gemm["kernel"] == name and gemm["chosen_by"] == "set_gemm_kernel"
    finally:
        bp._core._set_gemm_kernel(bp.float32, "")
    assert bp.show_config(mode="dicts")["gemm_float32"]["kernel"] == chosen
    with pytest.raises(ValueError, match="set_gemm_kernel: 'nope' is not one of"):
        bp._core._set_gemm_kernel(bp.float32, "nope")
    with pytest.raises(ValueError, match="only float32 and float64"):
        bp._core._set_gemm_kernel(bp.int64, "")


@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "c++")) is None, reason="no C++ compiler")
def test_the_compiled_inner_loops_pass_the_assembly_check():
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_gemm_asm.py")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "check_gemm_asm: all loops ok" in run.stdout
    for isa in ("avx512", "avx2", "scalar"):
        assert f"{isa}-" in run.stdout


def test_the_assembly_check_catches_spills_and_uncontracted_fmas():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import check_gemm_asm as check
    finally:
        sys.path.pop(0)
    # the k loop is unrolled (gemm_micro.inc's pragma): a pass holds that many steps
    steps = check.unrolled_steps()
    assert steps >= 1
    step = ["vmovaps\t(%r8), %zmm1", "vbroadcastss\t(%rax), %zmm2",
            "vfmadd231ps\t%zmm1, %zmm2, %zmm26"]  # fmt: skip
    good = [*step * steps, "jne\t.L10"]
    assert check.check_loop("avx512", check.Loop("k", "f", 1, 1, True, good)) == []
    if steps > 1:  # one step a pass: not the loop the pragma asks for
        problems = check.check_loop(
            "avx512", check.Loop("k", "f", 1, 1, True, [*step, "jne\t.L10"])
        )
        assert any(f"{steps} steps" in p for p in problems)
    spill = [*good[:-1], "vmovaps\t%zmm3, 64(%rsp)", good[-1]]
    assert "spills" in check.check_loop("avx512", check.Loop("k", "f", 1, 1, True, spill))[0]
    # %rbp is the stack only where the function made it its frame pointer.
    by_rbp = [*[step[0], "vbroadcastss\t0(%rbp,%rax), %zmm2", step[2]] * steps, good[-1]]
    assert check.check_loop("avx512", check.Loop("k", "f", 1, 1, True, by_rbp)) == []
    framed = check.Loop("k", "f", 1, 1, True, by_rbp, frame_pointer=True)
    assert "spills" in check.check_loop("avx512", framed)[0]
    loose = ["vbroadcastss\t(%rax), %zmm2", "vmulps\t%zmm1, %zmm2, %zmm3",
             "vaddps\t%zmm3, %zmm26, %zmm26"] * steps  # fmt: skip
    problems = check.check_loop("avx512", check.Loop("k", "f", 1, 1, True, loose))
    assert any("0 FMAs" in p for p in problems) and any("not contracted" in p for p in problems)
    # The k loop is the innermost loop with the most multiply-adds, not a shorter loop a
    # compiler adds for the steps the unrolled one leaves over.
    fma = check.re.compile(r"\bvfmadd\d+p[sd]\b")
    body = [".L3:", *step * steps, "jne\t.L3", ".L4:", *step, "jne\t.L4"]
    assert check.innermost_fma_loop(body, fma) == [*step * steps, "jne\t.L3"]
    shuffled = ["vpermilps\t$0, %zmm1, %zmm2", "vfmadd231ps\t%zmm1, %zmm2, %zmm26"] * steps
    problems = check.check_loop("avx512", check.Loop("k", "f", 1, 1, True, shuffled))
    assert any("broadcasts from memory" in p for p in problems)
