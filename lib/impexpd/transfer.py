"""The import and export sequences of ``ganeti-impexpd``.

Import: check the sink can be written; start socat listening; report the
port; wait (``--connect-timeout``) for a TLS connection; read and check
the header; start the decompressor and, for ``--data-cmd``, the command;
pump the data (unframing it, see :mod:`.pump`) into the sink; fsync it;
wait for every child to end well.

Export: open the source; start socat connecting, again after a refused
connection (once a second, ``--connect-retries`` times at most) until
``--connect-timeout`` has passed; send the header; start the compressor
and, for ``--data-cmd``, the command; pump the source (through the
compressor) to socat, framed, with the end mark last; wait for every
child to end well.

The failure that explains the others wins: when a pump fails because
socat ended (a broken pipe), socat's own error is reported.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import stat
import subprocess
import time
from typing import Any, NoReturn

from ganeti import constants, errors
from ganeti.impexpd import options as impexpd_options
from ganeti.impexpd import pump as pump_mod
from ganeti.impexpd import socat
from ganeti.impexpd.children import Child, Waker
from ganeti.impexpd.pump import Pump
from ganeti.impexpd.status import Progress, StatusFile

#: What starts the header the exporter sends; the magic and "\n" follow
HEADER_PREFIX = b"ganeti-impexp 1 "
#: Seconds socat gets to report its listening port
LISTEN_TIMEOUT = 30.0
#: Seconds the other children get to explain a pump failure
_EXPLAIN_GRACE = 2.0
#: Seconds between two connection attempts of an exporter
_RETRY_INTERVAL = 1.0
#: Longest sleep of the main loop (progress is sampled as often)
_TICK = 1.0
#: Seconds the pump threads get to end after the children were killed
_PUMP_JOIN_TIMEOUT = 10.0
#: socat's errors that make an exporter try again
_CONNECT_ERROR_RE = re.compile(r"^connect\(")

_MIB = 1024 * 1024


class TransferError(Exception):
    """The transfer failed; the message is the status's error message."""


def MakeHeader(magic: str) -> bytes:
    """The header an exporter sends before the data."""
    return HEADER_PREFIX + magic.encode("ascii") + b"\n"


def TakeFd(stream: Any) -> int:
    """Take over the descriptor of a Popen pipe (closing the file object,
    so that only the returned descriptor remains)."""
    fd = os.dup(stream.fileno())
    stream.close()
    return fd


def _Close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _PeerCommonName(ca_file: str) -> str:
    """The common name the importer's certificate must have: the CA's."""
    from ganeti.utils import x509
    try:
        with open(ca_file, "rb") as fd:
            cert = x509.LoadX509Certificate(fd.read())
    except (OSError, errors.GenericError, ValueError) as err:
        raise TransferError(f"cannot read the CA certificate {ca_file}: {err}") from err
    name = x509.GetCommonName(cert)
    if not name or not all(ch.isalnum() or ch in "-_.*" for ch in name):
        raise TransferError(f"the CA certificate {ca_file} has no usable common name"
                            f" ({name!r}) to check the peer against")
    return name


def _SourceSize(fd: int) -> int | None:
    """The size of a file or block device, None for anything else."""
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    if stat.S_ISBLK(st.st_mode):
        size = os.lseek(fd, 0, os.SEEK_END)
        os.lseek(fd, 0, os.SEEK_SET)
        return size
    return None


class Transfer:
    """One import or export, as the options say; :meth:`Run` does it."""

    def __init__(self, opts: argparse.Namespace, status: StatusFile) -> None:
        self.opts = opts
        self.status = status
        self.waker = Waker()
        self.children: list[Child] = []
        self.pumps: list[Pump] = []
        #: The pump at the data end, whose bytes are the progress
        self.data_pump: Pump | None = None
        self.aborted = False
        expected = None if opts.expected_size is None else opts.expected_size * _MIB
        self.progress = Progress(expected)
        self._fds: list[int] = []
        self._monitors: dict[Child, socat.SocatMonitor] = {}

    # --- the main thread's helpers -------------------------------------------------

    def Abort(self) -> None:
        """Stop the transfer (called from the signal handler)."""
        self.aborted = True
        self.waker.Wake()

    def _OnLine(self, child: Child, line: str, monitor: socat.SocatMonitor | None) -> None:
        line = monitor.Feed(line) if monitor is not None else f"{child.label}: {line}"
        logging.info("%s", line)
        self.status.AddOutput(line)

    def _Start(self, label: str, args: list[str],
               monitor: socat.SocatMonitor | None = None, **kwargs: Any) -> Child:
        try:
            child = Child(label, args, self.waker,
                          lambda c, line: self._OnLine(c, line, monitor), **kwargs)
        except OSError as err:
            raise TransferError(f"cannot run {args[0]}: {err.strerror}") from err
        if monitor is not None:
            self._monitors[child] = monitor
        self.children.append(child)
        return child

    def _Take(self, stream: Any) -> int:
        """A Popen pipe's descriptor, closed at the end unless a pump takes it."""
        fd = TakeFd(stream)
        self._fds.append(fd)
        return fd

    def _Pump(self, src: int, dst: int, src_name: str, dst_name: str,
              mode: str = pump_mod.COPY, fsync: bool = False) -> Pump:
        """Create a pump (started by :meth:`_RunPumps`); it owns the descriptors."""
        for fd in (src, dst):
            if fd in self._fds:
                self._fds.remove(fd)
        pump = Pump(src, dst, src_name, dst_name, self.waker, mode=mode, fsync=fsync)
        self.pumps.append(pump)
        return pump

    def _Tick(self) -> None:
        if self.data_pump is not None:
            self.progress.Sample(self.data_pump.done)
            self.status.Set(**self.progress.Fields())
        self.status.Write()

    def _Sleep(self, timeout: float, fds: tuple[int, ...] = ()) -> set[int]:
        """Wait for an event (at most ``timeout`` seconds); raise if aborted."""
        if self.aborted:
            raise TransferError("aborted")
        readable = self.waker.Wait(min(timeout, _TICK), fds)
        if self.aborted:
            raise TransferError("aborted")
        self._Tick()
        return readable

    def _Failed(self, tolerate: Child | None = None) -> list[Child]:
        return [child for child in self.children
                if child is not tolerate and child.Poll() not in (None, 0)]

    def _CheckChildren(self, tolerate: Child | None = None) -> None:
        """Raise for a child that failed (``tolerate`` excepted)."""
        if self._Failed(tolerate):
            self._RaiseFailure(None, tolerate)

    def _Explain(self, child: Child) -> str:
        monitor = self._monitors.get(child)
        if monitor is not None:
            return monitor.Explain(child.Poll())
        return child.Describe()

    def _IsConsequence(self, child: Child) -> bool:
        """Whether a child failed only because another one did (a broken pipe)."""
        if child.Poll() in (-signal.SIGPIPE, 128 + signal.SIGPIPE):
            # Killed by SIGPIPE (a shell reports that as 128 + SIGPIPE)
            return True
        monitor = self._monitors.get(child)
        if monitor is not None:
            # Only its local side: a broken pipe on the network is the news
            return monitor.LocalPipeBroken()
        return "broken pipe" in (child.last_line or "").lower()

    def _RaiseFailure(self, message: str | None = None,
                      tolerate: Child | None = None) -> NoReturn:
        """Raise the failure that explains what happened.

        The children and pumps get a moment to end first. Then, in order:
        socat's failure (the network's news), ``message`` or a pump's error,
        another child's failure, each unless it is a mere consequence (a
        broken pipe: its reader ended); then whatever there is.
        """
        for pump in self.pumps:
            pump.Release(False)
        others = [child for child in self.children if child is not tolerate]
        deadline = time.monotonic() + _EXPLAIN_GRACE
        while (any(child.Poll() is None for child in others)
               or any(pump.is_alive() for pump in self.pumps)) and \
                time.monotonic() < deadline:
            self._Sleep(deadline - time.monotonic())
        failed = self._Failed(tolerate)
        causes = [child for child in failed if not self._IsConsequence(child)]
        messages = [text for text in [message] + [pump.error for pump in self.pumps]
                    if text is not None]
        for child in causes:
            if child in self._monitors:
                raise TransferError(self._Explain(child))
        for text in messages:
            if "broken pipe" not in text.lower():
                raise TransferError(text)
        if causes or failed:
            raise TransferError(self._Explain((causes or failed)[0]))
        raise TransferError(messages[0] if messages else "a child process failed")

    def _WaitFor(self, predicate: Any, deadline: float, timeout_error: str,
                 tolerate: Child | None = None) -> Any:
        """Wait until ``predicate()`` is true; raise ``timeout_error`` at the
        deadline, or a child's failure."""
        while True:
            value = predicate()
            if value:
                return value
            self._CheckChildren(tolerate)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransferError(timeout_error)
            self._Sleep(remaining)

    def _RunPumps(self, data_pump: Pump) -> None:
        """Start the pumps; wait for them and every child to end well.

        A framing pump at the end of its source gets to send the end mark
        once every other pump and every child but socat ended well.
        """
        self.data_pump = data_pump
        self.progress.Sample(0)
        for pump in self.pumps:
            pump.start()
        while True:
            self._CheckChildren()
            if any(pump.error is not None for pump in self.pumps):
                self._RaiseFailure()
            for pump in self.pumps:
                if pump.at_end and not pump.finished and self._AllDoneBut(pump):
                    pump.Release(True)
            if all(pump.finished for pump in self.pumps) and \
                    all(child.Poll() == 0 for child in self.children):
                return
            self._Sleep(_TICK)

    def _AllDoneBut(self, pump: Pump) -> bool:
        """Whether everything feeding ``pump`` ended well (socat excepted,
        which it feeds)."""
        return all(other.finished and other.error is None
                   for other in self.pumps if other is not pump) and \
            all(child.Poll() == 0 for child in self.children
                if child not in self._monitors)

    def _Compression(self) -> tuple[list[str], list[str]] | None:
        return impexpd_options.CompressionCommands(self.opts.compress)

    # --- running ------------------------------------------------------------------

    def Run(self) -> int:
        """Do the transfer; write the final status; return the exit code."""
        error = None
        try:
            if self.opts.mode == constants.IEM_IMPORT:
                self._Import()
            else:
                self._Export()
        except TransferError as err:
            error = str(err)
        except Exception as err:  # report bugs in the status too
            logging.exception("Unexpected error")
            error = f"unexpected error: {err}"
        finally:
            self._StopAll()
        if error is None:
            assert self.data_pump is not None
            self.progress.Sample(self.data_pump.done)
            fields = self.progress.Fields()
            fields.update(progress_percent=100, progress_eta=0)
            self.status.Set(exit_status=0, **fields)
            logging.info("Transfer done: %d bytes", self.data_pump.done)
        else:
            logging.error("Transfer failed: %s", error)
            self.status.Set(exit_status=1, error_message=error)
        self.status.Write(force=True)
        self.waker.Close()
        return 0 if error is None else 1

    def _StopAll(self) -> None:
        """Kill and reap every child; end the pumps; close what is left."""
        for pump in self.pumps:
            pump.Release(False)
        for child in reversed(self.children):
            child.Kill()
        for fd in self._fds:
            _Close(fd)
        self._fds = []
        for pump in self.pumps:
            if pump.ident is None:
                # Never started: its descriptors are still ours to close
                _Close(pump.src)
                _Close(pump.dst)
            elif pump.is_alive():
                pump.join(_PUMP_JOIN_TIMEOUT)
                if pump.is_alive():
                    logging.error("A pump thread is stuck (in I/O?); leaving it")

    # --- import ------------------------------------------------------------------------

    def _CheckSink(self) -> None:
        data = self.opts.data
        if data.kind == "device":
            if not os.path.exists(data.value):
                raise TransferError(f"device {data.value} does not exist")
            if not os.access(data.value, os.W_OK):
                raise TransferError(f"device {data.value} is not writable")
        elif data.kind == "file":
            directory = os.path.dirname(data.value) or "/"
            if not os.path.isdir(directory):
                raise TransferError(f"directory {directory} of {data.value} does not exist")
            if os.path.isdir(data.value):
                raise TransferError(f"{data.value} is a directory")

    def _OpenSink(self) -> int:
        data = self.opts.data
        flags = os.O_WRONLY | os.O_CLOEXEC
        if data.kind == "file":
            flags |= os.O_CREAT | os.O_TRUNC
        try:
            fd = os.open(data.value, flags, 0o600)
        except OSError as err:
            raise TransferError(f"cannot open {data.value}: {err.strerror}") from err
        self._fds.append(fd)
        return fd

    def _ReadHeader(self, fd: int, deadline: float) -> None:
        expected = MakeHeader(self.opts.magic)
        received = b""
        while len(received) < len(expected) and expected.startswith(received):
            if time.monotonic() >= deadline:
                raise TransferError("the exporter sent no header within"
                                    f" {self.opts.connect_timeout} seconds")
            if fd not in self._Sleep(deadline - time.monotonic(), (fd,)):
                self._CheckChildren()
                continue
            chunk = os.read(fd, len(expected) - len(received))
            if not chunk:
                self._RaiseFailure("the connection ended before the exporter's header")
            received += chunk
        if received == expected:
            return
        if not received.startswith(HEADER_PREFIX[:len(received)]) or \
                len(received) < len(HEADER_PREFIX):
            raise TransferError("the peer sent no import/export header (wrong peer?)")
        got = received[len(HEADER_PREFIX):].split(b"\n")[0].decode("ascii", "replace")
        raise TransferError(f"magic mismatch: expected {self.opts.magic!r}, the"
                            f" exporter sent {got!r} (wrong peer?)")

    def _Import(self) -> None:
        opts = self.opts
        started = time.monotonic()
        self._CheckSink()
        monitor = socat.SocatMonitor()
        sock = self._Start("socat", socat.ListenCommand(opts.bind, opts.cert, opts.key,
                                                        opts.ca, opts.ipv6),
                           monitor=monitor, stdout=subprocess.PIPE)
        src = self._Take(sock.proc.stdout)
        port = self._WaitFor(lambda: monitor.listen_port,
                             time.monotonic() + LISTEN_TIMEOUT,
                             "socat did not report its listening port")
        # Logged first: whoever sees the port in the status finds the line
        logging.info("Listening on %s port %d", opts.bind, port)
        self.status.Set(listen_port=port)
        self.status.Write(force=True)
        self._WaitFor(lambda: monitor.connected, started + opts.connect_timeout,
                      f"no connection within {opts.connect_timeout} seconds")
        self.status.Set(connected=True)
        self.status.Write(force=True)
        self._ReadHeader(src, time.monotonic() + opts.connect_timeout)
        if opts.data.kind == "cmd":
            cmd = self._Start("command", ["/bin/sh", "-c", opts.data.value],
                              stdin=subprocess.PIPE)
            sink, sink_name, fsync = self._Take(cmd.proc.stdin), "the command", False
        else:
            sink, sink_name, fsync = self._OpenSink(), opts.data.value, True
        compression = self._Compression()
        if compression is None:
            data_pump = self._Pump(src, sink, "the connection", sink_name,
                                   mode=pump_mod.DEFRAME, fsync=fsync)
        else:
            dec_name = f"the decompressor ({opts.compress})"
            dec = self._Start(opts.compress, compression[1], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
            dec_in, dec_out = self._Take(dec.proc.stdin), self._Take(dec.proc.stdout)
            self._Pump(src, dec_in, "the connection", dec_name, mode=pump_mod.DEFRAME)
            data_pump = self._Pump(dec_out, sink, dec_name, sink_name, fsync=fsync)
        self._RunPumps(data_pump)

    # --- export ------------------------------------------------------------------------

    def _OpenSource(self) -> int | None:
        data = self.opts.data
        if data.kind == "cmd":
            return None
        try:
            fd = os.open(data.value, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            raise TransferError(f"cannot open {data.value}: {err.strerror}") from err
        self._fds.append(fd)
        if self.progress.expected is None:
            self.progress.expected = _SourceSize(fd)
        return fd

    def _TryConnect(self, common_name: str, deadline: float,
                    target: str) -> tuple[Child, socat.SocatMonitor]:
        """Start socat and wait until it is connected or has ended."""
        opts = self.opts
        monitor = socat.SocatMonitor()
        sock = self._Start("socat", socat.ConnectCommand(
            opts.host, opts.port, opts.cert, opts.key, opts.ca, opts.ipv6, common_name,
            deadline - time.monotonic()), monitor=monitor, stdin=subprocess.PIPE)
        self._WaitFor(lambda: monitor.connected or sock.Poll() is not None, deadline,
                      f"could not connect to {target} within {opts.connect_timeout}"
                      " seconds", tolerate=sock)
        return sock, monitor

    def _Connect(self) -> Child:
        """Start socat until it has a TLS connection; return it."""
        opts = self.opts
        common_name = _PeerCommonName(opts.ca)
        deadline = time.monotonic() + opts.connect_timeout
        failures = 0
        target = f"{opts.host} port {opts.port}"
        while True:
            sock, monitor = self._TryConnect(common_name, deadline, target)
            if monitor.connected:
                return sock
            # socat ended without a connection
            self.children.remove(sock)
            sock.Kill()
            last = monitor.LastError() or "no error reported"
            if monitor.tcp_connected or not _CONNECT_ERROR_RE.match(last):
                # Not a failure to connect (a refused TLS handshake, say)
                raise TransferError(monitor.Explain(sock.Poll()))
            failures += 1
            if opts.connect_retries is not None and failures > opts.connect_retries:
                raise TransferError(f"could not connect to {target} after {failures}"
                                    f" attempt(s): {last}")
            if time.monotonic() + _RETRY_INTERVAL >= deadline:
                raise TransferError(f"could not connect to {target} within"
                                    f" {opts.connect_timeout} seconds: {last}")
            logging.info("Connecting to %s failed (%s), trying again", target, last)
            retry_at = time.monotonic() + _RETRY_INTERVAL
            while time.monotonic() < retry_at:
                self._Sleep(retry_at - time.monotonic())

    def _Export(self) -> None:
        opts = self.opts
        src = self._OpenSource()
        sock = self._Connect()
        self.status.Set(connected=True)
        self.status.Write(force=True)
        net = self._Take(sock.proc.stdin)
        try:
            pump_mod.WriteAll(net, MakeHeader(opts.magic))
        except OSError as err:
            self._RaiseFailure(f"cannot send the header: {err.strerror}")
        if src is None:
            cmd = self._Start("command", ["/bin/sh", "-c", opts.data.value],
                              stdout=subprocess.PIPE)
            src, src_name = self._Take(cmd.proc.stdout), "the command"
        else:
            src_name = opts.data.value
        compression = self._Compression()
        if compression is None:
            data_pump = self._Pump(src, net, src_name, "the connection",
                                   mode=pump_mod.FRAME)
        else:
            comp_name = f"the compressor ({opts.compress})"
            comp = self._Start(opts.compress, compression[0], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
            comp_in, comp_out = self._Take(comp.proc.stdin), self._Take(comp.proc.stdout)
            data_pump = self._Pump(src, comp_in, src_name, comp_name)
            self._Pump(comp_out, net, comp_name, "the connection", mode=pump_mod.FRAME)
        self._RunPumps(data_pump)
