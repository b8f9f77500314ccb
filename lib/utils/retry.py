"""Calling a function again until it succeeds or time runs out.

The function signals "not yet" by raising :class:`RetryAgain`; anything else
it raises propagates at once. Time and waiting are injectable so that tests
run with a fake clock and never sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from ganeti import errors

__all__ = [
    "RETRY_REMAINING_TIME",
    "Retry",
    "RetryAgain",
    "RetryByNumberOfTimes",
    "RetryTimeout",
    "SimpleRetry",
]

T = TypeVar("T")

#: Special ``delay``: wait for all the time that is left before trying again
RETRY_REMAINING_TIME = object()


class RetryTimeout(Exception):
    """Retrying gave up; the arguments are those of the last RetryAgain."""

    def RaiseInner(self) -> NoReturn:
        """Raise the exception the last RetryAgain carried, if it carried one.

        Otherwise raise this RetryTimeout again.
        """
        if self.args and isinstance(self.args[0], BaseException):
            raise self.args[0]
        raise RetryTimeout(*self.args)


class RetryAgain(Exception):
    """Raised by a retried function to ask for another attempt.

    Its arguments become those of the :class:`RetryTimeout` raised when time
    runs out; pass an exception as the first one to re-raise it later with
    :meth:`RetryTimeout.RaiseInner`.
    """


class _BackoffDelay:
    """Exponential back-off: start, start*factor, ... capped at limit."""

    def __init__(self, start: float, factor: float, limit: float | None):
        if start <= 0:
            raise ValueError(f"Back-off start must be positive, got {start}")
        if factor < 1:
            raise ValueError(f"Back-off factor must be >= 1, got {factor}")
        if limit is not None and limit < start:
            raise ValueError(f"Back-off limit {limit} is below start {start}")
        self._next = start
        self._factor = factor
        self._limit = limit

    def __call__(self) -> float:
        current = self._next
        grown = current * self._factor
        self._next = grown if self._limit is None else min(grown, self._limit)
        return current


def _MakeDelayFn(delay: Any) -> Callable[[], float] | None:
    """Turn Retry's ``delay`` argument into a function giving the next wait.

    None stands for "wait for the remaining time".
    """
    if delay is RETRY_REMAINING_TIME:
        return None
    if isinstance(delay, (tuple, list)):
        if len(delay) != 3:
            raise ValueError("Back-off delay must be (start, factor, limit),"
                             f" got {delay!r}")
        return _BackoffDelay(*delay)
    if callable(delay):
        return delay
    if isinstance(delay, (int, float)) and not isinstance(delay, bool):
        if delay < 0:
            raise ValueError(f"Delay must not be negative, got {delay}")
        fixed = float(delay)
        return lambda: fixed
    raise ValueError(f"Invalid delay {delay!r}")


def Retry(fn: Callable[..., T], delay: Any, timeout: float,
          args: Sequence[Any] | None = None,
          wait_fn: Callable[[float], Any] = time.sleep,
          _time_fn: Callable[[], float] = time.time) -> T:
    """Call ``fn(*args)`` until it returns without raising RetryAgain.

    ``delay`` is the pause between attempts: a number of seconds, a tuple
    ``(start, factor, limit)`` for exponential back-off (``limit`` may be
    None), a function returning the next pause, or RETRY_REMAINING_TIME.
    A pause never extends past the deadline.

    @return: what ``fn`` returned
    @raise RetryTimeout: when ``timeout`` seconds passed without success;
        it carries the arguments of the last RetryAgain
    """
    if args is None:
        args = []
    delay_fn = _MakeDelayFn(delay)
    end_time = _time_fn() + timeout

    while True:
        try:
            return fn(*args)
        except RetryAgain as err:
            retry_args = err.args
        except RetryTimeout as err:
            raise errors.ProgrammerError("Nested retry loop did not handle its"
                                         " RetryTimeout") from err

        remaining = end_time - _time_fn()
        if remaining <= 0:
            raise RetryTimeout(*retry_args)

        pause = remaining if delay_fn is None else min(delay_fn(), remaining)
        if pause > 0:
            wait_fn(pause)


def SimpleRetry(expected: Any, fn: Callable[..., T], delay: Any,
                timeout: float, args: Sequence[Any] | None = None,
                wait_fn: Callable[[float], Any] = time.sleep,
                _time_fn: Callable[[], float] = time.time) -> T:
    """Call ``fn`` until its result is ``expected`` (or satisfies it).

    ``expected`` is a value compared with ``==``, or a predicate taking the
    result. Unlike :func:`Retry` this never raises RetryTimeout: on timeout
    it returns the last result, and the caller checks it.
    """
    last: list[T] = []

    def _attempt(*inner_args: Any) -> T:
        result = fn(*inner_args)
        last[:] = [result]
        if callable(expected):
            ok = expected(result)
        else:
            ok = result == expected
        if not ok:
            raise RetryAgain()
        return result

    try:
        return Retry(_attempt, delay, timeout, args=args, wait_fn=wait_fn,
                     _time_fn=_time_fn)
    except RetryTimeout:
        return last[0]


def RetryByNumberOfTimes(max_retries: int, exception_class: type[Exception],
                         fn: Callable[..., T], *args: Any,
                         **kwargs: Any) -> T:
    """Call ``fn`` up to ``max_retries`` times while it raises RetryAgain.

    No pause between attempts. When all attempts failed, raise
    ``exception_class`` with a message naming the last failure.
    """
    if max_retries < 1:
        raise ValueError(f"max_retries must be positive, got {max_retries}")
    last_err: RetryAgain | None = None
    for _ in range(max_retries):
        try:
            return fn(*args, **kwargs)
        except RetryAgain as err:
            last_err = err
    raise exception_class(f"Giving up after {max_retries} attempts:"
                          f" {last_err}")
