"""bprop.distributed: DDP equals single-process training, and a dead rank ends the job.

The MPI tests launch `mpiexec -n 2` on helper scripts (tests/mpi_worker_*.py) and skip
cleanly when mpi4py or mpiexec is missing (pip install ".[mpi]")."""

import functools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import bprop as bp
import bprop.distributed as dist
import numpy as np
import pytest

HERE = Path(__file__).parent


def _mpiexec():
    pytest.importorskip("mpi4py")
    exe = shutil.which("mpiexec") or shutil.which("mpiexec", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("no mpiexec on PATH")
    return exe


def _launch(args, timeout, env=None, flags=()):
    exe = _mpiexec()
    if "Open MPI" in _version(exe):
        flags = ["--allow-run-as-root", "--oversubscribe", *flags]
    return subprocess.run(
        [exe, *flags, "-n", "2", sys.executable, *args], capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})},
    )  # fmt: skip


@functools.cache
def _version(exe):
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout + out.stderr


def test_ddp_matches_single_process_with_the_global_batch():
    result = _launch([str(HERE / "mpi_worker_equivalence.py")], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "equivalence ok: 20 steps" in result.stdout
    assert "trainer equivalence ok: 50 steps" in result.stdout


def test_buckets_are_sent_during_backward_and_no_sync_accumulates():
    result = _launch([str(HERE / "mpi_worker_buckets.py")], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("buckets ok") == 2, result.stdout


def _check_checkpoint(path):
    # Absent, or complete and loadable (bp.save writes a temp file and renames it).
    if path.exists():
        assert set(bp.load(path)) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert not [p for p in path.parent.iterdir() if p != path], list(path.parent.iterdir())


def test_a_dead_rank_ends_the_job(tmp_path):
    checkpoint = tmp_path / "model.safetensors"
    started = time.monotonic()
    result = _launch([str(HERE / "mpi_worker_failure.py"), str(checkpoint)], timeout=60)
    assert result.returncode != 0
    assert "training finished" not in result.stdout
    assert time.monotonic() - started < 30  # MPICH ends the job at once (about 0.2 s)
    _check_checkpoint(checkpoint)


def test_timeout_guard_when_the_launcher_does_not_clean_up(tmp_path):
    if "HYDRA" not in _version(_mpiexec()).upper():
        pytest.skip("-disable-auto-cleanup is MPICH hydra's flag")
    checkpoint = tmp_path / "model.safetensors"
    result = _launch([str(HERE / "mpi_worker_failure.py"), str(checkpoint)], timeout=60,
                     env={"BPROP_MPI_TIMEOUT": "2"}, flags=["-disable-auto-cleanup"])  # fmt: skip
    assert result.returncode != 0
    assert "[sync_gradients] rank 0 of 2 waited 2 s" in result.stderr, result.stderr
    _check_checkpoint(checkpoint)


def test_sampler_splits_each_global_batch_across_ranks():
    n, per_rank, ranks = 103, 4, 3
    whole = dist.DistributedSampler(n, num_replicas=1, rank=0, seed=5, batch_size=ranks * per_rank)
    parts = [dist.DistributedSampler(n, num_replicas=ranks, rank=r, seed=5, batch_size=per_rank)
             for r in range(ranks)]  # fmt: skip
    for s in [whole, *parts]:
        s.set_epoch(2)
    for big, *small in zip(whole.batches(), *(p.batches() for p in parts)):
        np.testing.assert_array_equal(big, np.concatenate(small))
    assert len(list(whole.batches())) == n // (ranks * per_rank)
    assert len(parts[0]) == n // (ranks * per_rank) * per_rank
    again = dist.DistributedSampler(n, num_replicas=ranks, rank=1, seed=5, batch_size=per_rank)
    again.set_epoch(2)
    assert list(again) == list(parts[1])
    again.set_epoch(3)
    assert list(again) != list(parts[1])


def test_collectives_reject_strided_and_grad_tensors():
    with pytest.raises(ValueError, match=r"\[all_reduce_\] needs a contiguous tensor"):
        dist.all_reduce_(bp.zeros(3, 4).T)
    with pytest.raises(RuntimeError, match=r"\[broadcast_\] the tensor requires grad"):
        dist.broadcast_(bp.zeros(3, requires_grad=True))


def test_missing_mpi4py_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r"pip install \"bprop\[mpi\]\""):
        dist._mpi()
