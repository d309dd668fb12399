"""bp.save on the file system: atomic replacement, concurrent writers, symlinks, NUL paths,
permission bits, failures that leave the old file alone, and no leftover temporaries."""

import os
import stat
import subprocess
import sys
import textwrap
import threading

import bprop as bp
import numpy as np
import pytest

N_TENSORS = 8
N_VALUES = 64 * 1024


def _state(value: float) -> dict:
    return {f"t{i}": bp.full((N_VALUES,), value) for i in range(N_TENSORS)}


def _writer_of(loaded: dict) -> float:
    """The one value every tensor of a load holds; fails if the tensors disagree."""
    assert sorted(loaded) == [f"t{i}" for i in range(N_TENSORS)]
    values = {float(v) for t in loaded.values() for v in np.unique(t.numpy())}
    assert len(values) == 1, f"a load mixes the saves of several writers: {sorted(values)}"
    return values.pop()


def _files(folder) -> list:
    return sorted(os.listdir(folder))


def test_two_threads_saving_to_one_path_never_mix(tmp_path):
    path = tmp_path / "shared.safetensors"
    states = {1.0: _state(1.0), 2.0: _state(2.0)}
    bp.save(states[1.0], path)
    seen_while_writing = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            seen_while_writing.append(_writer_of(bp.load(path)))

    watcher = threading.Thread(target=reader)
    watcher.start()
    try:
        for _ in range(50):
            barrier = threading.Barrier(2)
            errors = []

            def write(value, barrier=barrier, errors=errors):
                try:
                    barrier.wait()
                    bp.save(states[value], path)
                except BaseException as error:  # noqa: BLE001  (reported below)
                    errors.append(error)

            writers = [threading.Thread(target=write, args=(v,)) for v in states]
            for w in writers:
                w.start()
            for w in writers:
                w.join()
            assert errors == []
            assert _writer_of(bp.load(path)) in states
    finally:
        stop.set()
        watcher.join()
    assert seen_while_writing and set(seen_while_writing) <= set(states)
    assert _files(tmp_path) == ["shared.safetensors"]


_PROCESS_WRITER = textwrap.dedent(
    """
    import sys
    import bprop as bp
    path, value, rounds = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    n_tensors, n_values = int(sys.argv[4]), int(sys.argv[5])
    state = {f"t{i}": bp.full((n_values,), value) for i in range(n_tensors)}
    for _ in range(rounds):
        bp.save(state, path)
    """
)


def test_two_processes_saving_to_one_path_never_mix(tmp_path):
    path = tmp_path / "shared.safetensors"
    sizes = [str(N_TENSORS), str(N_VALUES)]
    writers = [
        subprocess.Popen([sys.executable, "-c", _PROCESS_WRITER, str(path), str(v), "50", *sizes])
        for v in (1.0, 2.0)
    ]
    while any(w.poll() is None for w in writers):
        if path.exists():
            assert _writer_of(bp.load(path)) in (1.0, 2.0)
    assert [w.wait() for w in writers] == [0, 0]
    assert _writer_of(bp.load(path)) in (1.0, 2.0)
    assert _files(tmp_path) == ["shared.safetensors"]


def test_a_symlink_named_like_a_temporary_is_not_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    path = tmp_path / "model.safetensors"
    for name in (str(path) + ".tmp", str(tmp_path / ".model.safetensors.tmp")):
        os.symlink(victim, name)
    bp.save({"w": bp.ones(3)}, path)
    assert victim.read_bytes() == b"precious"
    assert not path.is_symlink()
    np.testing.assert_array_equal(bp.load(path)["w"].numpy(), np.ones(3, np.float32))


def test_a_path_with_nul_raises_and_writes_nothing(tmp_path):
    existing = tmp_path / "a"
    existing.write_bytes(b"old")
    before = _files(tmp_path)
    for bad in (str(existing) + "\0.safetensors", str(tmp_path / "b\0c")):
        with pytest.raises(ValueError, match=r"^\[save\] the path contains a NUL character$"):
            bp.save({"w": bp.ones(2)}, bad)
    assert _files(tmp_path) == before
    assert existing.read_bytes() == b"old"
    with pytest.raises(ValueError, match=r"^\[load\] the path contains a NUL character$"):
        bp.load(str(existing) + "\0x")


def test_the_mode_of_an_existing_file_is_kept_and_a_new_file_gets_the_umask(tmp_path):
    path = tmp_path / "kept.safetensors"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    bp.save({"w": bp.ones(2)}, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    bp.save({"w": bp.zeros(2)}, path)  # and again, over the file save wrote
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    for mask, expected in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        old = os.umask(mask)
        try:
            fresh = tmp_path / f"new-{mask:o}.safetensors"
            bp.save({"w": bp.ones(2)}, fresh)
        finally:
            os.umask(old)
        assert stat.S_IMODE(os.stat(fresh).st_mode) == expected


def test_a_missing_directory_raises_and_leaves_nothing(tmp_path):
    before = _files(tmp_path)
    target = tmp_path / "missing" / "model.safetensors"
    with pytest.raises(FileNotFoundError, match=r"^\[Errno 2\] \[save\] .*missing") as info:
        bp.save({"w": bp.ones(2)}, target)
    assert "No such file or directory" in str(info.value)
    assert _files(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_an_unwritable_directory_raises_and_leaves_nothing(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"old")
    os.chmod(folder, 0o500)
    try:
        with pytest.raises(PermissionError, match=r"\[save\] .*locked"):
            bp.save({"w": bp.ones(2)}, folder / "model.safetensors")
        assert _files(folder) == ["model.safetensors"]
        assert (folder / "model.safetensors").read_bytes() == b"old"
    finally:
        os.chmod(folder, 0o700)


def test_failed_saves_leave_the_old_file_byte_identical(tmp_path):
    path = tmp_path / "model.safetensors"
    bp.save({"w": bp.arange(5.0)}, path)
    old = path.read_bytes()
    with pytest.raises(TypeError, match=r"\[save\]"):
        bp.save({"w": bp.ones(2), "bad": object()}, path)
    assert path.read_bytes() == old
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "inside").write_bytes(b"x")
    with pytest.raises(OSError, match=r"\[save\] .*folder") as info:
        bp.save({"w": bp.ones(2)}, folder)
    assert "Is a directory" in str(info.value)
    assert _files(folder) == ["inside"]
    assert path.read_bytes() == old
    assert _files(tmp_path) == ["folder", "model.safetensors"]


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path):
    # In a child process: RLIMIT_FSIZE makes write() fail with EFBIG part way through the
    # temporary, the way a full disk would.
    path = tmp_path / "model.safetensors"
    bp.save({"w": bp.arange(5.0)}, path)
    old = path.read_bytes()
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        import bprop as bp
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            bp.save({{"w": bp.ones(1_000_000)}}, {str(path)!r})
        except OSError as error:
            print(error)
            sys.exit(3)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    assert "[save] writing failed for" in done.stdout
    assert "File too large" in done.stdout
    assert path.read_bytes() == old
    assert _files(tmp_path) == ["model.safetensors"]


def test_successful_saves_leave_no_temporaries(tmp_path):
    for i in range(20):
        bp.save({"w": bp.full((100,), float(i))}, tmp_path / f"m{i % 3}.safetensors")
    bp.save(bp.ones(2), tmp_path / ("n" * 250))  # a long name: the temporary's is cut short
    assert _files(tmp_path) == ["m0.safetensors", "m1.safetensors", "m2.safetensors", "n" * 250]


def test_a_symlink_at_the_path_is_replaced_and_its_target_is_untouched(tmp_path):
    target = tmp_path / "ckpt-100.safetensors"
    bp.save({"w": bp.zeros(2)}, target)
    old = target.read_bytes()
    os.chmod(target, 0o640)
    link = tmp_path / "latest.safetensors"
    os.symlink(target.name, link)
    bp.save({"w": bp.ones(2)}, link)
    assert not link.is_symlink() and link.is_file()
    np.testing.assert_array_equal(bp.load(link)["w"].numpy(), np.ones(2, np.float32))
    assert target.read_bytes() == old
    assert stat.S_IMODE(os.stat(link).st_mode) == 0o640  # the permission bits it pointed to
    dangling = tmp_path / "dangling.safetensors"
    os.symlink(tmp_path / "nowhere" / "x", dangling)
    bp.save({"w": bp.ones(2)}, dangling)
    assert not dangling.is_symlink() and dangling.is_file()
    assert not (tmp_path / "nowhere").exists()
    # Writing through the link is one realpath away, as the docstring says.
    os.remove(link)
    os.symlink(target.name, link)
    bp.save({"w": bp.ones(2)}, os.path.realpath(link))
    assert link.is_symlink()
    np.testing.assert_array_equal(bp.load(target)["w"].numpy(), np.ones(2, np.float32))


def test_the_trainer_checkpoint_goes_through_the_same_atomic_save(tmp_path):
    model = bp.nn.Linear(3, 1)
    trainer = bp.Trainer(model, bp.nn.MSELoss(), bp.optim.SGD(model.parameters(), lr=0.1))
    path = tmp_path / "trainer.safetensors"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    x = np.ones((4, 3), np.float32)
    y = np.ones((4, 1), np.float32)
    trainer.fit(x, y, batch_size=2, epochs=2, checkpoint=str(path), progress=False)
    assert sorted(bp.load(path)) == ["bias", "weight"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert _files(tmp_path) == ["trainer.safetensors"]
