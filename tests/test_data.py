"""bprop.utils.data against torch.utils.data: the same datasets give the same batches
(collation of tensors, numpy arrays, numbers, strings, tuples, dicts and named tuples,
drop_last, len), samplers keep PyTorch's semantics and errors, shuffles are reproducible
from bp.manual_seed or a bp.Generator, and worker processes yield the batches in order."""

import collections
import os
import signal

import bprop as bp
import numpy as np
import pytest
from bprop.utils.data import (
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    default_convert,
    get_worker_info,
    random_split,
)

Point = collections.namedtuple("Point", "x y")


def to_numpy(obj):
    """A batch (bprop or torch) as nested Python lists/dicts of numpy arrays, for comparing;
    dtypes are kept by name (float64, int64, bool...)."""
    if hasattr(obj, "detach"):
        array = obj.detach().numpy()
        return ("tensor", str(array.dtype), array.tolist())
    if isinstance(obj, dict):
        return {k: to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return (type(obj).__name__, [to_numpy(v) for v in obj])
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [to_numpy(v) for v in obj])
    return obj


class Samples(Dataset):
    """A map-style dataset whose samples are built by `make(i, lib)` (lib: bprop or torch)."""

    def __init__(self, n, make, lib):
        self.n, self.make, self.lib = n, make, lib

    def __getitem__(self, i):
        return self.make(i, self.lib)

    def __len__(self):
        return self.n


SAMPLES = {
    "tensor_pair": lambda i, m: (m.full((2, 3), float(i)), m.tensor(i)),
    "numpy": lambda i, m: np.arange(3, dtype=np.float32) + i,
    "numpy_int32_and_scalars": lambda i, m: (
        np.array([i], np.int64),
        np.float64(i / 2),
        np.int64(i),
    ),
    "python_numbers": lambda i, m: (i, i / 4, i % 2 == 0),
    "dict": lambda i, m: {"x": m.tensor([float(i)]), "label": i, "name": f"s{i}"},
    "nested": lambda i, m: {"pair": [i, (m.tensor(float(i)), "a")], "meta": {"id": i}},
    "namedtuple": lambda i, m: Point(m.tensor([i, i]), float(i)),
    "list": lambda i, m: [i, m.tensor(i)],
    "string": lambda i, m: f"text {i}",
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
@pytest.mark.parametrize("batch_size,drop_last", [(1, False), (3, False), (3, True), (None, False)])
def test_batches_match_pytorch(kind, batch_size, drop_last):
    torch = pytest.importorskip("torch")
    import torch.utils.data as tud

    ours = DataLoader(Samples(7, SAMPLES[kind], bp), batch_size=batch_size, drop_last=drop_last)
    theirs = tud.DataLoader(Samples(7, SAMPLES[kind], torch), batch_size=batch_size,
                            drop_last=drop_last)  # fmt: skip
    assert len(ours) == len(theirs)
    ours_batches, theirs_batches = list(ours), list(theirs)
    assert len(ours_batches) == len(theirs_batches) == len(ours)
    for a, b in zip(ours_batches, theirs_batches):
        assert to_numpy(a) == to_numpy(b)


def test_default_collate_and_convert_match_pytorch_on_plain_values():
    pytest.importorskip("torch")
    import torch.utils.data as tud

    batches = [
        [1.5, 2.5], [1, 2], [True, False], ["a", "b"], [np.float32(1), np.float32(2)],
        [np.array([1, 2], np.int64), np.array([3, 4], np.int64)], [(1, "a"), (2, "b")],
        [{"a": 1.0}, {"a": 2.0}], [Point(1, 2), Point(3, 4)],
    ]  # fmt: skip
    for batch in batches:
        assert to_numpy(default_collate(batch)) == to_numpy(tud.default_collate(batch))
    for sample in [np.arange(3), (np.float64(2.0), "x"), {"k": [np.array([True])]}, 5, "s"]:
        assert to_numpy(default_convert(sample)) == to_numpy(tud.default_convert(sample))


def test_collate_errors_match_pytorch():
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        default_collate([bp.zeros(2), bp.zeros(3)])
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="default_collate: batch must contain tensors"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="found <U1"):
        default_collate([np.array(["a"]), np.array(["b"])])


def test_tensor_dataset_batches_and_len():
    x, y = bp.arange(20).reshape(10, 2).float(), bp.arange(10)
    ds = TensorDataset(x, y)
    assert len(ds) == 10
    xi, yi = ds[3]
    np.testing.assert_array_equal(xi.numpy(), [6.0, 7.0])
    assert yi.item() == 3
    loader = DataLoader(ds, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [tuple(b[0].shape) for b in batches] == [(4, 2), (4, 2), (2, 2)]
    assert isinstance(batches[0], list)  # tuples of samples collate to a list, as in PyTorch
    np.testing.assert_array_equal(batches[2][1].numpy(), [8, 9])
    assert len(DataLoader(ds, batch_size=4, drop_last=True)) == 2
    with pytest.raises(ValueError, match="Size mismatch between tensors"):
        TensorDataset(bp.zeros(3), bp.zeros(4))


def test_shuffle_is_a_permutation_reproducible_from_the_seed():
    ds = TensorDataset(bp.arange(50))
    loader = DataLoader(ds, batch_size=8, shuffle=True)

    def epoch():
        return [int(v) for (b,) in loader for v in b.tolist()]

    bp.manual_seed(11)
    first, second = epoch(), epoch()
    assert sorted(first) == list(range(50)) and first != list(range(50))
    assert first != second  # a new order every epoch
    bp.manual_seed(11)
    assert epoch() == first and epoch() == second
    g = bp.Generator().manual_seed(3)
    seeded = DataLoader(ds, batch_size=8, shuffle=True, generator=g)
    a = [v for (b,) in seeded for v in b.tolist()]
    g.manual_seed(3)
    bp.manual_seed(99)  # the loader's own generator, not the global one
    assert [v for (b,) in seeded for v in b.tolist()] == a


def test_random_sampler_semantics():
    data = list(range(10))
    g = bp.Generator().manual_seed(0)
    assert sorted(RandomSampler(data, generator=g)) == data
    more = list(RandomSampler(data, num_samples=25, generator=g))
    assert len(more) == 25 and sorted(more[:10]) == data and sorted(more[10:20]) == data
    assert len(set(more[20:])) == 5
    drawn = list(RandomSampler(data, replacement=True, num_samples=70, generator=g))
    assert len(drawn) == 70 and set(drawn) <= set(data) and len(set(drawn)) < 10 + 1
    assert len(set(drawn)) > 5  # uniform over 10 values: 70 draws miss at most a few
    assert len(RandomSampler(data, replacement=True, num_samples=70)) == 70
    with pytest.raises(ValueError, match="num_samples should be a positive integer value"):
        RandomSampler(data, num_samples=0)
    with pytest.raises(TypeError, match="replacement should be a boolean value"):
        RandomSampler(data, replacement=1)
    assert list(SequentialSampler(data)) == data and len(SequentialSampler(data)) == 10


def test_subset_and_weighted_samplers():
    g = bp.Generator().manual_seed(1)
    picked = list(SubsetRandomSampler([3, 5, 7, 9], generator=g))
    assert sorted(picked) == [3, 5, 7, 9]
    weights = [0.0, 0.0, 1.0, 3.0]
    drawn = list(WeightedRandomSampler(weights, 400, generator=g))
    assert len(drawn) == 400 and set(drawn) == {2, 3}
    assert 250 < drawn.count(3) < 350  # p = 3/4
    unique = list(WeightedRandomSampler([1.0, 1.0, 1.0, 1.0], 4, replacement=False, generator=g))
    assert sorted(unique) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="weights should be a 1d sequence"):
        WeightedRandomSampler([[1.0]], 1)
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        WeightedRandomSampler([1.0], True)


def test_batch_sampler_matches_pytorch():
    pytest.importorskip("torch")
    import torch.utils.data as tud

    for n, size, drop in [(10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False)]:
        ours = BatchSampler(SequentialSampler(range(n)), size, drop)
        theirs = tud.BatchSampler(tud.SequentialSampler(range(n)), size, drop)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="batch_size should be a positive integer value"):
            BatchSampler(range(3), bad, False)
        with pytest.raises(ValueError):
            tud.BatchSampler(range(3), bad, False)
    with pytest.raises(ValueError, match="drop_last should be a boolean value"):
        BatchSampler(range(3), 2, 1)


def test_loader_with_sampler_and_batch_sampler():
    ds = TensorDataset(bp.arange(10) * 10)
    loader = DataLoader(ds, batch_size=2, sampler=[9, 0, 4])
    assert [b[0].tolist() for b in loader] == [[90, 0], [40]] and len(loader) == 2
    loader = DataLoader(ds, batch_sampler=[[1, 2, 3], [7]])
    assert [b[0].tolist() for b in loader] == [[10, 20, 30], [70]]
    assert loader.batch_size is None and len(loader) == 2


def test_incompatible_options_raise_as_in_pytorch():
    torch = pytest.importorskip("torch")
    import torch.utils.data as tud

    ds = TensorDataset(bp.arange(4))
    theirs = tud.TensorDataset(torch.arange(4))

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(3))

    class TorchStream(tud.IterableDataset):
        def __iter__(self):
            return iter(range(3))

    cases = [
        ({"batch_sampler": [[0]], "batch_size": 2}, "mutually exclusive with batch_size"),
        ({"batch_sampler": [[0]], "shuffle": True}, "mutually exclusive with batch_size"),
        ({"batch_sampler": [[0]], "drop_last": True}, "mutually exclusive with batch_size"),
        ({"sampler": [0, 1], "shuffle": True}, "sampler option is mutually exclusive with shuffle"),
        ({"batch_size": None, "drop_last": True}, "disables auto-batching"),
        ({"num_workers": -1}, "num_workers option should be non-negative"),
        ({"timeout": -1}, "timeout option should be non-negative"),
        ({"prefetch_factor": 2}, "prefetch_factor option could only be specified"),
        ({"persistent_workers": True}, "persistent_workers option needs num_workers > 0"),
        ({"multiprocessing_context": "fork"}, "multiprocessing_context can only be used"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            DataLoader(ds, **kwargs)
        with pytest.raises(ValueError):
            tud.DataLoader(theirs, **kwargs)
    for kwargs in ({"shuffle": True}, {"sampler": [0]}, {"batch_sampler": [[0]]}):
        with pytest.raises(ValueError, match="IterableDataset: expected unspecified"):
            DataLoader(Stream(), **kwargs)
        with pytest.raises(ValueError):
            tud.DataLoader(TorchStream(), **kwargs)
    loader = DataLoader(ds, batch_size=2)
    with pytest.raises(ValueError, match="batch_size attribute should not be set after"):
        loader.batch_size = 3
    loader.num_workers = 0  # not locked, as in PyTorch


class Stream(IterableDataset):
    def __init__(self, n, lib=bp):
        self.n, self.lib = n, lib

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        for i in range(start, self.n, step):
            yield {"x": self.lib.tensor([float(i)]), "i": i}

    def __len__(self):
        return self.n


@pytest.mark.parametrize("batch_size,drop_last", [(4, False), (4, True), (None, False)])
def test_iterable_dataset_matches_pytorch(batch_size, drop_last):
    torch = pytest.importorskip("torch")
    import torch.utils.data as tud

    class TorchStream(tud.IterableDataset):
        def __iter__(self):
            yield from Stream(10, torch)

        def __len__(self):
            return 10

    ours = DataLoader(Stream(10), batch_size=batch_size, drop_last=drop_last)
    theirs = tud.DataLoader(TorchStream(), batch_size=batch_size, drop_last=drop_last)
    assert len(ours) == len(theirs)
    assert [to_numpy(b) for b in ours] == [to_numpy(b) for b in theirs]


def test_datasets_compose():
    a, b = TensorDataset(bp.arange(3)), TensorDataset(bp.arange(10, 14))
    both = a + b
    assert isinstance(both, ConcatDataset) and len(both) == 7
    assert [both[i][0].item() for i in range(7)] == [0, 1, 2, 10, 11, 12, 13]
    assert both[-1][0].item() == 13
    with pytest.raises(IndexError):
        both[7]
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])
    sub = Subset(both, [6, 0, 3])
    assert len(sub) == 3 and [sub[i][0].item() for i in range(3)] == [13, 0, 10]
    assert [s[0].item() for s in sub.__getitems__([2, 1])] == [10, 0]
    chained = Stream(2) + Stream(3)
    assert isinstance(chained, ChainDataset) and [s["i"] for s in chained] == [0, 1, 0, 1, 2]
    assert len(chained) == 5


def test_random_split_sizes_match_pytorch():
    torch = pytest.importorskip("torch")
    import torch.utils.data as tud

    for n, lengths in [(10, [3, 7]), (10, [0.5, 0.5]), (11, [0.3, 0.3, 0.4]), (7, [0.1, 0.9]),
                       (5, [1.0]), (3, [0.2, 0.2, 0.2, 0.2, 0.2])]:  # fmt: skip
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ours = random_split(TensorDataset(bp.arange(n)), lengths)
                theirs = tud.random_split(tud.TensorDataset(torch.arange(n)), lengths)
        assert [len(s) for s in ours] == [len(s) for s in theirs]
        values = sorted(i for s in ours for i in s.indices)
        assert values == list(range(n))  # disjoint and complete
    with pytest.raises(ValueError, match="Sum of input lengths does not equal"):
        random_split(TensorDataset(bp.arange(5)), [2, 2])
    with pytest.raises(ValueError, match="Fraction at index 1 is not between 0 and 1"):
        random_split(TensorDataset(bp.arange(5)), [0.5, 1.5, -1.0])
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        random_split(TensorDataset(bp.arange(2)), [0.9, 0.1])


def test_random_split_is_reproducible_from_a_generator():
    ds = TensorDataset(bp.arange(20))
    first = [
        s.indices for s in random_split(ds, [0.8, 0.2], generator=bp.Generator().manual_seed(42))
    ]
    again = [
        s.indices for s in random_split(ds, [0.8, 0.2], generator=bp.Generator().manual_seed(42))
    ]
    other = [
        s.indices for s in random_split(ds, [0.8, 0.2], generator=bp.Generator().manual_seed(43))
    ]
    assert first == again != other
    bp.manual_seed(5)
    a = random_split(ds, [10, 10])[0].indices
    bp.manual_seed(5)
    assert random_split(ds, [10, 10])[0].indices == a


# Worker processes.


class Slow(Dataset):
    """Sample i is (i, a tensor of i, the worker's id); items vary in cost so workers finish
    out of order."""

    def __getitem__(self, i):
        import time

        time.sleep(0.002 * (i % 3))
        info = get_worker_info()
        return i, bp.full((2,), float(i)), -1 if info is None else info.id

    def __len__(self):
        return 23


def test_workers_yield_the_batches_of_one_process_in_order():
    serial = list(DataLoader(Slow(), batch_size=4))
    parallel = DataLoader(Slow(), batch_size=4, num_workers=2, prefetch_factor=3)
    batches = list(parallel)
    assert len(batches) == len(serial) == len(parallel) == 6
    for a, b in zip(serial, batches):
        np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    assert {int(w) for b in batches for w in b[2].tolist()} == {0, 1}
    assert all(b[2].numpy().tolist() == [-1] * len(b[2].tolist()) for b in serial)


def seed_of_worker(i):
    info = get_worker_info()
    return bp.randint(0, 10**9, (1,)), info.seed, info.id


def test_workers_are_seeded_reproducibly_and_differently():
    def run():
        bp.manual_seed(7)
        loader = DataLoader([0, 1, 2, 3], batch_size=None, num_workers=2, collate_fn=seed_of_worker)
        return [(r.item(), s, w) for r, s, w in loader]

    first = run()
    assert first == run()
    (r0, s0, w0), (r1, s1, w1) = first[0], first[1]
    assert (w0, w1) == (0, 1) and s1 == s0 + 1 and r0 != r1


def test_worker_errors_are_raised_in_the_main_process_with_the_worker_named():
    class Broken(Dataset):
        def __getitem__(self, i):
            if i == 5:
                raise KeyError(f"bad sample {i}")
            return i

        def __len__(self):
            return 8

    loader = DataLoader(Broken(), batch_size=2, num_workers=2)
    it = iter(loader)
    assert next(it).tolist() == [0, 1] and next(it).tolist() == [2, 3]
    with pytest.raises(KeyError, match=r"Caught KeyError in DataLoader worker process 0"):
        next(it)
    assert next(it).tolist() == [6, 7]  # the loader goes on, as PyTorch's
    with pytest.raises(StopIteration):
        next(it)


def test_a_dead_worker_is_reported_not_waited_for():
    class Dies(Dataset):
        def __getitem__(self, i):
            if i == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return i

        def __len__(self):
            return 4

    with pytest.raises(
        RuntimeError, match=r"DataLoader worker \(pid\(s\) \d+\) exited unexpectedly"
    ):
        list(DataLoader(Dies(), batch_size=1, num_workers=1))


def test_worker_init_fn_and_iterable_datasets_split_by_worker_info():
    loader = DataLoader(Stream(9), batch_size=2, num_workers=3, worker_init_fn=lambda i: None)
    seen = sorted(int(v) for b in loader for v in b["i"].tolist())
    assert seen == list(range(9))  # each worker yields its share once


def test_persistent_workers_serve_several_epochs():
    loader = DataLoader(TensorDataset(bp.arange(12)), batch_size=5, num_workers=2,
                        persistent_workers=True, shuffle=True)  # fmt: skip
    bp.manual_seed(0)
    epochs = [[v for (b,) in loader for v in b.tolist()] for _ in range(3)]
    workers = loader._iterator._workers
    assert all(w.is_alive() for w in workers)
    for values in epochs:
        assert sorted(values) == list(range(12))
    it = iter(loader)
    next(it)  # an epoch abandoned half-way
    assert sorted(v for (b,) in loader for v in b.tolist()) == list(range(12))
    assert loader._iterator._workers is workers
    loader._iterator.shutdown()
    assert not any(w.is_alive() for w in workers)


def test_timeout_raises():
    class Sleepy(Dataset):
        def __getitem__(self, i):
            import time

            time.sleep(0.5)
            return i

        def __len__(self):
            return 1

    with pytest.raises(RuntimeError, match="DataLoader timed out after 0.1 seconds"):
        list(DataLoader(Sleepy(), num_workers=1, timeout=0.1))


def make_parameter_batch(i):
    p = bp.nn.Parameter(bp.full((2,), float(i)))
    return {"p": p, "mask": bp.tensor([i % 2 == 0]), "n": i}


def test_tensors_of_every_kind_cross_from_workers():
    batches = list(DataLoader([0, 1], batch_size=None, num_workers=1,
                              collate_fn=make_parameter_batch))  # fmt: skip
    assert [b["n"] for b in batches] == [0, 1]
    assert batches[1]["p"].tolist() == [1.0, 1.0] and batches[1]["p"].requires_grad
    assert batches[0]["mask"].dtype == bp.bool and batches[0]["mask"].tolist() == [True]

    def non_leaf(i):
        return bp.ones(2, requires_grad=True) * i

    with pytest.raises(RuntimeError, match="Cowardly refusing to serialize non-leaf tensor"):
        list(DataLoader([1], batch_size=None, num_workers=1, collate_fn=non_leaf))


def test_an_abandoned_epoch_stops_its_workers_at_once():
    # Batches bigger than a pipe's buffer, unread: the workers must not wait at exit for the
    # main process to read them (which would cost the 5 s join timeout, then a terminate).
    import gc

    loader = DataLoader(TensorDataset(bp.zeros(64, 20000)), batch_size=16, num_workers=2)
    it = iter(loader)
    next(it)
    workers = it._workers
    del it
    gc.collect()
    assert not any(w.is_alive() for w in workers)
    # Stopped, not terminated: waiting for the unread batches would have cost the 5 s join and
    # then a terminate (a negative exit code). No wall-clock bound: a loaded machine (the ASan
    # stage) may take seconds to schedule the workers' exit.
    assert [w.exitcode for w in workers] == [0, 0]


class Uneven(IterableDataset):
    """Worker 0 yields one sample, worker 1 seven: the loader must drain worker 1 after
    worker 0 has ended."""

    def __iter__(self):
        info = get_worker_info()
        count = 1 if info.id == 0 else 7
        return iter(range(100 * info.id, 100 * info.id + count))


@pytest.mark.parametrize("prefetch_factor", [1, 2])
def test_iterable_workers_of_unequal_length_are_all_drained(prefetch_factor):
    loader = DataLoader(Uneven(), batch_size=1, num_workers=2, prefetch_factor=prefetch_factor)
    values = [int(b.item()) for b in loader]
    assert sorted(values) == [0, *range(100, 107)]
    assert values[:3] == [0, 100, 101]  # round-robin while both workers have data


def test_spawned_workers_receive_the_dataset_by_pickle():
    # With "spawn" nothing is inherited: the TensorDataset's tensors cross as numpy arrays.
    ds = TensorDataset(bp.arange(6).float(), bp.tensor([True, False] * 3))
    loader = DataLoader(ds, batch_size=4, num_workers=1, multiprocessing_context="spawn")
    batches = list(loader)
    assert [b[0].tolist() for b in batches] == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0]]
    assert batches[1][1].dtype == bp.bool and batches[1][1].tolist() == [True, False]


def test_stack_dataset_matches_pytorch():
    torch = pytest.importorskip("torch")
    import torch.utils.data as tud
    from bprop.utils.data import StackDataset

    ours = StackDataset(TensorDataset(bp.arange(4)), list("abcd"))
    theirs = tud.StackDataset(tud.TensorDataset(torch.arange(4)), list("abcd"))
    assert len(ours) == len(theirs) == 4
    assert to_numpy(list(DataLoader(ours, batch_size=3))) == to_numpy(
        list(tud.DataLoader(theirs, batch_size=3))
    )
    named = StackDataset(x=bp.arange(3) * 2, label=[7, 8, 9])
    assert named[1]["label"] == 8 and named[1]["x"].item() == 2
    with pytest.raises(ValueError, match="Size mismatch between datasets"):
        StackDataset([1, 2], [1])
    with pytest.raises(ValueError, match="both types are given"):
        StackDataset([1], y=[2])
