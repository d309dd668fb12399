"""bprop.distributed: DDP equals single-process training, and a dead rank ends the job.

The MPI tests launch `mpiexec -n 2` on helper scripts (tests/mpi_worker_*.py) and skip
cleanly when mpi4py or mpiexec is missing (pip install ".[mpi]")."""

import functools
import os
import shutil
import signal
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
    """mpiexec -n 2 in its own process group: past the timeout the whole group is killed, so
    ranks that outlive their launcher don't spin on through the rest of the run."""
    exe = _mpiexec()
    if "Open MPI" in _version(exe):
        flags = ["--allow-run-as-root", "--oversubscribe", *flags]
    command = [exe, *flags, "-n", "2", sys.executable, *args]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})}, start_new_session=True,
    ) as process:  # fmt: skip
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            pytest.fail(f"{command} ran past {timeout} s:\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


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
    # MPICH ends the job at once (about 0.2 s); once in CI, under load, it did not, and rank 0
    # waited for its peer for ever. The timeout guard (BPROP_MPI_TIMEOUT) bounds that case.
    result = _launch([str(HERE / "mpi_worker_failure.py"), str(checkpoint)], timeout=120,
                     env={"BPROP_MPI_TIMEOUT": "20"})  # fmt: skip
    assert result.returncode != 0, result.stdout + result.stderr
    assert "training finished" not in result.stdout
    assert time.monotonic() - started < 60, result.stdout + result.stderr
    _check_checkpoint(checkpoint)


def test_timeout_guard_when_the_launcher_does_not_clean_up(tmp_path):
    if "HYDRA" not in _version(_mpiexec()).upper():
        pytest.skip("-disable-auto-cleanup is MPICH hydra's flag")
    checkpoint = tmp_path / "model.safetensors"
    # 10 s: the guard covers every collective, and under load (the ASan stage) one rank may start
    # seconds after the other, which 2 s turned into a timeout in the first broadcast.
    result = _launch([str(HERE / "mpi_worker_failure.py"), str(checkpoint)], timeout=120,
                     env={"BPROP_MPI_TIMEOUT": "10"}, flags=["-disable-auto-cleanup"])  # fmt: skip
    assert result.returncode != 0
    assert "[sync_gradients] rank 0 of 2 waited 10 s" in result.stderr, result.stderr
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


# PyTorch's torch.distributed names (issue 15): one process without a launcher is PyTorch's
# single-process group; under mpiexec the same calls join the MPI job.


@pytest.fixture
def group():
    """A clean default process group state before and after the test."""
    dist.destroy_process_group()
    yield
    dist.destroy_process_group()


def test_torch_api_under_mpiexec():
    result = _launch([str(HERE / "mpi_worker_torch_api.py")], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("torch api ok") == 2, result.stdout


@pytest.mark.parametrize(
    "kwargs", [{"backend": "gloo"}, {"backend": "mpi", "world_size": 1, "rank": 0}, {},
               {"backend": "cpu:gloo,cuda:nccl", "init_method": "tcp://127.0.0.1:23456"}],
)  # fmt: skip
def test_single_process_group_without_a_launcher(group, kwargs, monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # proves no MPI is needed
    assert dist.is_available() and not dist.is_initialized()
    dist.init_process_group(**kwargs)
    assert dist.is_initialized()
    assert (dist.get_rank(), dist.get_world_size()) == (0, 1)
    assert dist.get_backend() == ("mpi" if kwargs.get("backend") == "mpi" else "gloo")
    t = bp.tensor([1.5, -2.0])
    for op in dist.ReduceOp:
        if op in (dist.ReduceOp.PREMUL_SUM, dist.ReduceOp.BAND, dist.ReduceOp.BOR,
                  dist.ReduceOp.BXOR):  # fmt: skip
            continue
        assert dist.all_reduce(t, op=op) is None
        assert t.tolist() == [1.5, -2.0]
    assert dist.broadcast(t, src=0) is None and t.tolist() == [1.5, -2.0]
    assert dist.all_reduce(t, async_op=True).wait()
    out = [bp.zeros(2)]
    dist.all_gather(out, t)
    assert out[0].tolist() == [1.5, -2.0]
    dist.barrier()
    assert dist.all_reduce_(bp.ones(2)).tolist() == [1.0, 1.0]  # bprop's own names too
    assert (dist.rank(), dist.world_size()) == (0, 1)
    dist.destroy_process_group()
    assert not dist.is_initialized()
    dist.init_process_group("gloo", world_size=1, rank=0)  # and again, as in PyTorch


def test_process_group_errors_match_pytorch(group, monkeypatch):
    torch = pytest.importorskip("torch")
    import torch.distributed as tdist

    for fn in (dist.get_rank, dist.get_world_size):
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            fn()
    with pytest.raises(ValueError):
        tdist.get_rank()
    with pytest.raises(ValueError, match="not been initialized"):
        dist.all_reduce(bp.ones(2))
    with pytest.raises(RuntimeError, match=r"backend 'nccl' needs an accelerator.*'gloo'"):
        dist.init_process_group("nccl")
    with pytest.raises(ValueError, match="unknown backend"):
        dist.init_process_group("smoke-signals")
    with pytest.raises(RuntimeError, match=r"world_size=4.*mpiexec -n 4"):
        dist.init_process_group("gloo", world_size=4, rank=0)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="world_size=2"):
        dist.init_process_group("gloo")
    monkeypatch.delenv("WORLD_SIZE")
    assert not dist.is_initialized()  # the failed calls changed nothing
    dist.init_process_group("gloo")
    with pytest.raises(ValueError, match="initialize the default process group twice"):
        dist.init_process_group("gloo")
    t = bp.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match=r"\[broadcast\] src=1 is not a rank"):
        dist.broadcast(t, src=1)
    with pytest.raises(ValueError, match="Either src or group_src"):
        dist.broadcast(t)
    with pytest.raises(ValueError, match="Tensors must be contiguous"):
        dist.all_reduce(bp.zeros(3, 4).T)
    with pytest.raises(ValueError, match="BAND needs an integer or bool tensor"):
        dist.all_reduce(t, op=dist.ReduceOp.BAND)
    with pytest.raises(ValueError, match="AVG needs a floating-point"):
        dist.all_reduce(bp.arange(3), op=dist.ReduceOp.AVG)
    with pytest.raises(ValueError, match="PREMUL_SUM is not supported"):
        dist.all_reduce(t, op=dist.ReduceOp.PREMUL_SUM)
    with pytest.raises(TypeError, match="expects a bprop Tensor"):
        dist.all_reduce([1.0])
    with pytest.raises(ValueError, match=r"tensor_list must hold 1 tensors of shape \(2,\)"):
        dist.all_gather([bp.zeros(3)], t)
    assert t.tolist() == [1.0, 2.0]
    assert [op.name for op in dist.ReduceOp] == [
        "SUM", "AVG", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR", "PREMUL_SUM",
    ]  # fmt: skip
    assert [int(getattr(dist.ReduceOp, op.name)) for op in dist.ReduceOp] == [
        int(getattr(torch.distributed.ReduceOp.RedOpType, op.name)) for op in dist.ReduceOp
    ]


def test_torch_style_ddp_in_a_single_process_group_trains_like_the_model(group, monkeypatch):
    from bprop import nn

    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2))
    dist.init_process_group("gloo")

    def make():
        bp.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))

    plain, wrapped = make(), nn.parallel.DistributedDataParallel(make(), bucket_cap_mb=1e-4)
    assert isinstance(wrapped, nn.Module) and isinstance(wrapped, dist.DistributedDataParallel)
    assert list(wrapped.state_dict()) == ["module." + k for k in plain.state_dict()]
    opts = [bp.optim.SGD(m.parameters(), lr=0.1) for m in (plain, wrapped)]
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = bp.tensor(rng.standard_normal((5, 4)).astype(np.float32))
        for model, opt in zip((plain, wrapped), opts):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
    for p, q in zip(plain.parameters(), wrapped.module.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    wrapped.sync_gradients()  # harmless
    wrapped.eval()
    assert not wrapped.module.training
    with pytest.raises(ValueError, match="device_ids and output_device"):
        nn.parallel.DistributedDataParallel(make(), device_ids=[0])


def test_data_parallel_runs_the_model_in_this_process():
    from bprop import nn

    model = nn.Linear(3, 2)
    wrapped = nn.parallel.DataParallel(model)
    x = bp.randn(4, 3)
    np.testing.assert_array_equal(wrapped(x).detach().numpy(), model(x).detach().numpy())
    assert list(wrapped.state_dict()) == ["module.weight", "module.bias"]
    assert wrapped.module is model
    with pytest.raises(ValueError, match="device_ids"):
        nn.parallel.DataParallel(model, device_ids=[0, 1])


def test_utils_data_distributed_sampler_matches_pytorch_split(group):
    pytest.importorskip("torch")
    from bprop.utils.data import DataLoader, DistributedSampler, TensorDataset
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    for n, ranks, drop_last in [(10, 3, False), (10, 3, True), (2, 5, False), (12, 4, False)]:
        data = list(range(n))
        for shuffle in (False, True):
            ours = [DistributedSampler(data, ranks, r, shuffle=shuffle, seed=3, drop_last=drop_last)
                    for r in range(ranks)]  # fmt: skip
            theirs = [TorchSampler(data, ranks, r, shuffle=shuffle, drop_last=drop_last)
                      for r in range(ranks)]  # fmt: skip
            assert [len(s) for s in ours] == [len(s) for s in theirs]
            parts = [list(s) for s in ours]
            if not shuffle:
                assert parts == [list(s) for s in theirs]
            merged = [i for p in parts for i in p]
            if drop_last:  # a subset without repeats
                assert len(set(merged)) == len(merged) == ranks * len(ours[0])
            else:  # every index, padded with repeats up to a multiple of the ranks
                assert set(merged) == set(data)
                assert len(merged) == ranks * len(ours[0]) >= n
    sampler = DistributedSampler(list(range(20)), 2, 0, seed=1)
    first = list(sampler)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first
    with pytest.raises(
        ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"
    ):
        DistributedSampler([1, 2], 2, 2)
    with pytest.raises(ValueError, match="not been initialized"):
        DistributedSampler([1, 2])
    dist.init_process_group("gloo")
    loader = DataLoader(TensorDataset(bp.arange(6)), batch_size=4,
                        sampler=DistributedSampler(range(6), shuffle=False))  # fmt: skip
    assert [b[0].tolist() for b in loader] == [[0, 1, 2, 3], [4, 5]]
