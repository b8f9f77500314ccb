"""The threads that move the data, and the framing of the data stream.

After the header line, an exporter sends the data as blocks, each a
4-byte big-endian length and that many bytes, and ends with an empty block
(length 0), the end mark. The importer writes nothing as complete unless
the end mark arrived: a stream that simply stops (an exporter killed, or
aborted while socat closes the TLS connection cleanly) is an error, not a
short success. Compressed data is framed likewise (compression happens
inside the frames).

A :class:`Pump` copies one descriptor to another (``copy``), framing on
the way (``frame``, the exporter's last pump) or unframing (``deframe``,
the importer's first pump). It owns and closes both descriptors and
counts the payload bytes, which the one at the data end reports as
progress. The exporter's framing pump sends the end mark only when the
main thread has seen everything before it end well (the data command and
the compressor exited 0, the other pump finished without error): a source
that failed half-way must not look complete to the importer.
"""

from __future__ import annotations

import os
import struct
import threading

from ganeti.impexpd.children import Waker

#: Bytes read at once
CHUNK_SIZE = 1024 * 1024
#: Largest block a sender may frame (ours are at most CHUNK_SIZE)
MAX_FRAME = 16 * CHUNK_SIZE

COPY = "copy"
FRAME = "frame"
DEFRAME = "deframe"

_LENGTH = struct.Struct(">I")

#: What an importer reports for a stream without its end mark
EARLY_END = "the data ended before the exporter's end mark (the exporter failed or was aborted)"


class PumpError(Exception):
    """Moving the data failed; the message says where."""


def WriteAll(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Pump(threading.Thread):
    """Moves ``src`` to ``dst`` (descriptors it owns) in ``mode``; fsyncs
    ``dst`` at the end when asked. ``done`` counts payload bytes; after
    the end, ``error`` is None or the failure."""

    def __init__(self, src: int, dst: int, src_name: str, dst_name: str, waker: Waker,
                 mode: str = COPY, fsync: bool = False) -> None:
        super().__init__(daemon=True, name=f"pump-{mode}")
        assert mode in (COPY, FRAME, DEFRAME)
        self.src, self.dst = src, dst
        self.src_name, self.dst_name = src_name, dst_name
        self.mode = mode
        self.fsync = fsync
        self.done = 0
        self.error: str | None = None
        #: A FRAME pump: the source has ended, the end mark awaits :meth:`Release`
        self.at_end = False
        self.finished = False
        self._waker = waker
        self._release = threading.Event()
        self._end_ok = False

    def Release(self, ok: bool) -> None:
        """Let a FRAME pump at the end of its source finish: with the end
        mark if ``ok`` (everything before it went well), else without."""
        self._end_ok = ok
        self._release.set()

    def _Read(self, size: int) -> bytes:
        try:
            return os.read(self.src, size)
        except OSError as err:
            raise PumpError(f"cannot read from {self.src_name}: {err.strerror}") from err

    def _Write(self, data: bytes) -> None:
        try:
            WriteAll(self.dst, data)
        except OSError as err:
            raise PumpError(f"cannot write to {self.dst_name}: {err.strerror}") from err

    def _Copy(self) -> None:
        while True:
            data = self._Read(CHUNK_SIZE)
            if not data:
                break
            if self.mode == FRAME:
                self._Write(_LENGTH.pack(len(data)) + data)
            else:
                self._Write(data)
            self.done += len(data)
        if self.mode == FRAME:
            self.at_end = True
            self._waker.Wake()
            self._release.wait()
            if self._end_ok:
                self._Write(_LENGTH.pack(0))

    def _Deframe(self) -> None:
        buf = bytearray()

        def _Fill(size: int) -> None:
            while len(buf) < size:
                data = self._Read(CHUNK_SIZE + _LENGTH.size)
                if not data:
                    raise PumpError(EARLY_END)
                buf.extend(data)

        while True:
            _Fill(_LENGTH.size)
            (length,) = _LENGTH.unpack_from(buf)
            if length == 0:
                break
            if length > MAX_FRAME:
                raise PumpError(f"the data from {self.src_name} is corrupt (a block of"
                                f" {length} bytes)")
            _Fill(_LENGTH.size + length)
            self._Write(bytes(buf[_LENGTH.size:_LENGTH.size + length]))
            self.done += length
            del buf[:_LENGTH.size + length]
        if len(buf) > _LENGTH.size or self._Read(1):
            raise PumpError(f"{self.src_name} sent data after the end mark")

    def run(self) -> None:
        try:
            if self.mode == DEFRAME:
                self._Deframe()
            else:
                self._Copy()
            if self.fsync:
                try:
                    os.fsync(self.dst)
                except OSError as err:
                    raise PumpError(f"cannot flush {self.dst_name}: {err.strerror}") from err
        except PumpError as err:
            self.error = str(err)
        finally:
            for fd in (self.src, self.dst):
                try:
                    os.close(fd)
                except OSError as err:
                    if fd == self.dst and self.error is None:
                        self.error = f"cannot close {self.dst_name}: {err.strerror}"
            self.finished = True
            self._waker.Wake()
