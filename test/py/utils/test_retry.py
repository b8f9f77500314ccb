"""Tests for ganeti.utils.retry (fake clock, no real sleeping)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ganeti import errors, utils


class FakeClock:
    """A clock that only moves when someone waits."""

    def __init__(self, start=1000.0):
        self.now = start
        self.waits = []

    def time(self):
        return self.now

    def sleep(self, seconds):
        assert seconds > 0, "Retry must not wait for nothing"
        self.waits.append(seconds)
        self.now += seconds


class Flaky:
    """Fails with RetryAgain ``failures`` times, then returns ``result``."""

    def __init__(self, failures, result="done", exc_args=()):
        self.failures = failures
        self.result = result
        self.exc_args = exc_args
        self.calls = []

    def __call__(self, *args):
        self.calls.append(args)
        if len(self.calls) <= self.failures:
            raise utils.RetryAgain(*self.exc_args)
        return self.result


def _Retry(fn, delay, timeout, clock, **kwargs):
    return utils.Retry(fn, delay, timeout, wait_fn=clock.sleep,
                       _time_fn=clock.time, **kwargs)


def test_success_first_time():
    clock = FakeClock()
    fn = Flaky(0)
    assert _Retry(fn, 1, 10, clock) == "done"
    assert clock.waits == []


def test_args_passed():
    clock = FakeClock()
    fn = Flaky(2)
    assert _Retry(fn, 1, 10, clock, args=["a", 2]) == "done"
    assert fn.calls == [("a", 2)] * 3


def test_fixed_delay():
    clock = FakeClock()
    fn = Flaky(3)
    assert _Retry(fn, 0.5, 10, clock) == "done"
    assert clock.waits == [0.5, 0.5, 0.5]


def test_timeout_carries_last_args():
    clock = FakeClock()
    fn = Flaky(100, exc_args=("still", "busy"))
    with pytest.raises(utils.RetryTimeout) as info:
        _Retry(fn, 1, 5, clock)
    assert info.value.args == ("still", "busy")
    assert clock.now == pytest.approx(1005.0)
    assert len(fn.calls) == 6  # t=0,1,2,3,4,5


def test_wait_never_passes_deadline():
    clock = FakeClock()
    fn = Flaky(100)
    with pytest.raises(utils.RetryTimeout):
        _Retry(fn, 4, 10, clock)
    assert clock.waits == [4, 4, 2]
    assert clock.now == pytest.approx(1010.0)


def test_exponential_backoff():
    clock = FakeClock()
    fn = Flaky(100)
    with pytest.raises(utils.RetryTimeout):
        _Retry(fn, (0.1, 2.0, 1.0), 5, clock)
    assert clock.waits[:6] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert sum(clock.waits) == pytest.approx(5.0)


def test_backoff_without_limit():
    clock = FakeClock()
    fn = Flaky(4)
    _Retry(fn, (1, 3, None), 1000, clock)
    assert clock.waits == [1, 3, 9, 27]


@pytest.mark.parametrize("delay", [(0, 2, 1), (1, 0.5, 2), (2, 2, 1), (1, 2),
                                   -1, "1", None])
def test_invalid_delay(delay):
    clock = FakeClock()
    with pytest.raises(ValueError):
        _Retry(Flaky(1), delay, 10, clock)


def test_callable_delay():
    clock = FakeClock()
    delays = iter([3, 1, 2])
    fn = Flaky(3)
    _Retry(fn, lambda: next(delays), 100, clock)
    assert clock.waits == [3, 1, 2]


def test_remaining_time_delay():
    clock = FakeClock()
    fn = Flaky(1)
    assert _Retry(fn, utils.RETRY_REMAINING_TIME, 7, clock) == "done"
    assert clock.waits == [7]


def test_other_exceptions_propagate():
    clock = FakeClock()

    def _fn():
        raise KeyError("boom")

    with pytest.raises(KeyError):
        _Retry(_fn, 1, 10, clock)
    assert clock.waits == []


def test_zero_timeout_tries_once():
    clock = FakeClock()
    fn = Flaky(1)
    with pytest.raises(utils.RetryTimeout):
        _Retry(fn, 1, 0, clock)
    assert len(fn.calls) == 1


def test_nested_timeout_is_a_bug():
    clock = FakeClock()

    def _fn():
        raise utils.RetryTimeout()

    with pytest.raises(errors.ProgrammerError):
        _Retry(_fn, 1, 10, clock)


def test_raise_inner():
    inner = errors.OpExecError("underlying problem")
    with pytest.raises(utils.RetryTimeout) as info:
        _Retry(Flaky(100, exc_args=(inner,)), 1, 2, FakeClock())
    with pytest.raises(errors.OpExecError, match="underlying problem"):
        info.value.RaiseInner()


def test_raise_inner_without_exception():
    err = utils.RetryTimeout("just text")
    with pytest.raises(utils.RetryTimeout) as info:
        err.RaiseInner()
    assert info.value.args == ("just text",)
    with pytest.raises(utils.RetryTimeout):
        utils.RetryTimeout().RaiseInner()


@given(st.integers(min_value=0, max_value=50),
       st.floats(min_value=0.01, max_value=5),
       st.floats(min_value=0, max_value=100))
def test_property_total_wait_bounded(failures, delay, timeout):
    clock = FakeClock()
    fn = Flaky(failures)
    try:
        _Retry(fn, delay, timeout, clock)
    except utils.RetryTimeout:
        assert len(fn.calls) <= failures
    else:
        assert len(fn.calls) == failures + 1
    assert clock.now - 1000.0 <= timeout + 1e-9


class TestSimpleRetry:
    def test_expected_value(self):
        clock = FakeClock()
        values = iter([1, 2, 3, 4])
        result = utils.SimpleRetry(3, lambda: next(values), 1, 10,
                                   wait_fn=clock.sleep, _time_fn=clock.time)
        assert result == 3
        assert clock.waits == [1, 1]

    def test_predicate(self):
        clock = FakeClock()
        values = iter(["", "", "ok"])
        result = utils.SimpleRetry(bool, lambda: next(values), 1, 10,
                                   wait_fn=clock.sleep, _time_fn=clock.time)
        assert result == "ok"

    def test_timeout_returns_last_value(self):
        clock = FakeClock()
        counter = iter(range(100))
        result = utils.SimpleRetry(-1, lambda: next(counter), 1, 3,
                                   wait_fn=clock.sleep, _time_fn=clock.time)
        assert result == 3

    def test_args(self):
        clock = FakeClock()
        result = utils.SimpleRetry(5, lambda a, b: a + b, 1, 3, args=(2, 3),
                                   wait_fn=clock.sleep, _time_fn=clock.time)
        assert result == 5


class TestRetryByNumberOfTimes:
    def test_success(self):
        fn = Flaky(2)
        assert utils.RetryByNumberOfTimes(3, errors.OpExecError, fn, 1) == \
            "done"
        assert fn.calls == [(1,)] * 3

    def test_gives_up(self):
        fn = Flaky(5, exc_args=("nope",))
        with pytest.raises(errors.OpExecError, match="3 attempts: nope"):
            utils.RetryByNumberOfTimes(3, errors.OpExecError, fn)
        assert len(fn.calls) == 3

    def test_invalid_count(self):
        with pytest.raises(ValueError):
            utils.RetryByNumberOfTimes(0, errors.OpExecError, Flaky(0))
