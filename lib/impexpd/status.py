"""The status file of an import/export daemon and its progress figures.

The file holds the fields of :class:`ganeti.objects.ImportExportStatus` as
a JSON object. It is replaced atomically (a temporary file renamed into
place) when the state changes and at most about once a second while data
flows, so a reader never sees a partial file.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ganeti import serializer, utils

#: Lines of output the status keeps
RECENT_OUTPUT_LINES = 20
#: Seconds between two writes while only the progress changes
WRITE_INTERVAL = 1.0
#: Seconds of samples the throughput is averaged over
THROUGHPUT_WINDOW = 10.0

_MIB = 1024 * 1024


class Progress:
    """Bytes moved, throughput over the last seconds, ETA and percent.

    ``expected`` is the size of the whole transfer in bytes, if known.
    """

    def __init__(self, expected: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.expected = expected
        self._clock = clock
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self.done = 0

    def Sample(self, done: int) -> None:
        """Record that ``done`` bytes have been moved by now."""
        now = self._clock()
        self.done = done
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= THROUGHPUT_WINDOW:
            self._samples.popleft()

    def Throughput(self) -> float | None:
        """MiB/s over the sampled window; None before a second has passed."""
        if len(self._samples) < 2:
            return None
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        if t1 - t0 < 1.0:
            return None
        return (b1 - b0) / (t1 - t0) / _MIB

    def Fields(self) -> dict[str, Any]:
        """The progress fields of the status."""
        throughput = self.Throughput()
        percent = eta = None
        if self.expected:
            percent = min(100, int(self.done * 100 / self.expected))
            if throughput:
                remaining = max(0, self.expected - self.done)
                eta = int(round(remaining / (throughput * _MIB)))
        elif self.expected == 0:
            percent = 100
        return {
            "progress_mbytes": round(self.done / _MIB, 2),
            "progress_throughput": None if throughput is None else round(throughput, 2),
            "progress_eta": eta,
            "progress_percent": percent,
        }


class StatusFile:
    """The state of the daemon as written to its status file.

    Output lines may be added from any thread; :meth:`Write` is called by
    the main thread only.
    """

    def __init__(self, path: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        now = time.time()
        self._data: dict[str, Any] = {
            "recent_output": [],
            "listen_port": None,
            "connected": False,
            "progress_mbytes": None,
            "progress_throughput": None,
            "progress_eta": None,
            "progress_percent": None,
            "exit_status": None,
            "error_message": None,
            "ctime": now,
            "mtime": now,
        }
        self._output: collections.deque[str] = collections.deque(maxlen=RECENT_OUTPUT_LINES)
        self._dirty = True
        self._last_write: float | None = None

    def Get(self, name: str) -> Any:
        """The current value of field ``name``."""
        with self._lock:
            return self._data[name]

    def Set(self, **fields: Any) -> None:
        """Change fields (written at the next :meth:`Write`)."""
        with self._lock:
            for name, value in fields.items():
                if name not in self._data:
                    raise KeyError(f"Unknown status field {name!r}")
                if self._data[name] != value:
                    self._data[name] = value
                    self._dirty = True

    def AddOutput(self, line: str) -> None:
        """Keep a line of the children's output."""
        with self._lock:
            self._output.append(line)
            self._dirty = True

    def Write(self, force: bool = False) -> None:
        """Write the file if something changed (and, unless ``force``, the
        last write is at least :data:`WRITE_INTERVAL` old)."""
        now = self._clock()
        with self._lock:
            if not self._dirty:
                return
            if not force and self._last_write is not None and \
                    now - self._last_write < WRITE_INTERVAL:
                return
            self._data["recent_output"] = list(self._output)
            self._data["mtime"] = time.time()
            text = serializer.DumpJson(self._data)
            self._dirty = False
            self._last_write = now
        try:
            utils.WriteFile(self.path, data=text, mode=0o600)
        except OSError as err:
            # The transfer goes on; the next write may succeed
            logging.error("Cannot write the status file %s: %s", self.path, err)
            with self._lock:
                self._dirty = True
