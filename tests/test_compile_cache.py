"""bp.compile's recording cache and threads: at most cache_size recordings per compiled step,
least recently used dropped first (its memory freed), one warning when it drops; the keyword
validated; calls from several threads each get their own call's results."""

import gc
import threading
import warnings
import weakref

import bprop as bp
import numpy as np
import pytest
from bprop.compile import DEFAULT_CACHE_SIZE


def affine(x):
    return x * 2.0 + 1.0


def inputs(n):
    return bp.tensor(np.arange(n, dtype=np.float32))


def test_default_cache_size_is_torchs_limit():
    assert DEFAULT_CACHE_SIZE == 8
    assert bp.compile(affine).cache_size == 8
    assert bp.compile(cache_size=3)(affine).cache_size == 3  # decorator form passes it on


def test_least_recently_used_recording_is_dropped():
    compiled = bp.compile(affine, cache_size=2)
    first = compiled(inputs(1))
    compiled(inputs(2))
    assert compiled(inputs(1)) is first  # replayed: 1 is now the most recently used
    with pytest.warns(UserWarning, match=r"affine needs more than cache_size=2"):
        compiled(inputs(3))  # drops 2, the least recently used
    assert compiled.signatures == [(((1,), bp.float32),), (((3,), bp.float32),)]
    assert compiled(inputs(1)) is first
    again = compiled(inputs(2))  # records again: a new result object, right values
    assert np.array_equal(again.numpy(), [1.0, 3.0])
    assert compiled.signatures == [(((1,), bp.float32),), (((2,), bp.float32),)]


def test_a_dropped_recording_is_freed():
    compiled = bp.compile(affine, cache_size=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled(inputs(1000))
        capture, placeholders, _ = next(iter(compiled._recordings.values()))[0]
        refs = [weakref.ref(capture), weakref.ref(placeholders[0])]
        del capture, placeholders
        compiled(inputs(5))
    gc.collect()
    assert [r() for r in refs] == [None, None]
    assert len(compiled._recordings) == 1


def test_a_new_shape_every_call_stays_bounded_and_warns_once():
    compiled = bp.compile(affine, cache_size=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 30):
            out = compiled(inputs(n))
            assert np.array_equal(out.numpy(), np.arange(n) * 2.0 + 1.0)
    assert len(compiled._recordings) == 4
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1 and "cache_size=4" in messages[0]
    assert caught[0].filename == __file__  # points at the caller's line


def test_no_warning_while_within_the_limit():
    compiled = bp.compile(affine, cache_size=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            for n in (1, 2, 3):
                compiled(inputs(n))
    assert len(compiled.signatures) == 3


@pytest.mark.parametrize(
    ("value", "error", "fragment"),
    [
        (0, ValueError, "cache_size must be at least 1, got 0"),
        (-3, ValueError, "cache_size must be at least 1, got -3"),
        (2.0, TypeError, "cache_size must be a positive int, got float"),
        (True, TypeError, "cache_size must be a positive int, got bool"),
        ("8", TypeError, "cache_size must be a positive int, got str"),
    ],
)
def test_a_bad_cache_size_names_the_argument(value, error, fragment):
    with pytest.raises(error, match=r"^\[compile\] " + fragment):
        bp.compile(affine, cache_size=value)
    with pytest.raises(error, match=fragment):
        bp.compile(cache_size=value)


def test_two_threads_each_get_their_own_results():
    weight = bp.tensor(np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(4, 3))

    def step(x):
        return (x @ weight).tanh() * 3.0

    compiled = bp.compile(step)
    rng = np.random.default_rng(0)
    data = [[rng.standard_normal((5, 4)).astype(np.float32) for _ in range(200)] for _ in range(2)]
    barrier = threading.Barrier(2)
    bad = [[], []]
    errors = []

    def body(i):
        try:
            barrier.wait()
            for k, x in enumerate(data[i]):
                got = compiled(bp.tensor(x)).numpy().copy()  # read right after the call
                want = step(bp.tensor(x)).numpy()
                if not np.array_equal(got, want):
                    bad[i].append(k)
        except BaseException as e:  # noqa: BLE001  (reported by the main thread)
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert bad == [[], []]
    assert compiled.signatures == [(((5, 4), bp.float32),)]  # one signature, two recordings
    assert len(compiled._recordings) == 2


def test_threads_training_one_model_apply_every_step():
    bp.manual_seed(0)
    net = bp.nn.Linear(3, 1)
    opt = bp.optim.SGD(net.parameters(), lr=0.0)  # lr 0: each step leaves the model as is

    def step(x):
        opt.zero_grad()
        loss = (net(x) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    compiled = bp.compile(step)
    x = bp.ones(4, 3)
    want = step(x).item()
    results = [[], [], []]

    def body(i):
        for _ in range(50):
            results[i].append(compiled(x).item())

    threads = [threading.Thread(target=body, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [[want] * 50] * 3
