"""ganeti-confd: the configuration query daemon (UDP, master candidates).

Answers confd queries (:mod:`ganeti.confd.server`) from an in-memory copy
of ``config.data``, read without taking ownership of it. The file is
watched with inotify (``asyncinotify``) through its directory, since the
master replaces it by an atomic rename; a burst of changes gives one
reload at most every ``CONFD_CONFIG_RELOAD_RATELIMIT`` seconds, and the
file is checked every ``CONFD_CONFIG_RELOAD_TIMEOUT`` seconds anyway in
case an event was missed. The HMAC key (``hmac.key``) is watched the same
way, so a renewed key is used without a restart. A configuration that
cannot be read leaves the previous one in use (or, at startup, makes every
query answer an error); a missing key at startup is fatal.

A dedicated thread reads the UDP socket (blocking reads in a tight loop)
and answers each datagram in line; the main thread runs an asyncio loop
that watches the files, parses configurations in a worker thread and
swaps the new snapshot in (an atomic reference swap). SIGTERM and SIGINT
stop the daemon.

Options follow ganeti-confd(8); ``--ready-file`` and ``--log-file`` are
additions for virtual clusters and tests.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable

from ganeti import constants, errors, pathutils, utils
from ganeti import daemon as daemon_util
from ganeti.confd import client as confd_client
from ganeti.confd import server as confd_server

_RECV_SIZE = 65536


def BuildParser() -> argparse.ArgumentParser:
    """The command line of ganeti-confd."""
    parser = argparse.ArgumentParser(
        prog=constants.CONFD, description="Ganeti configuration query daemon")
    parser.add_argument("-f", "--foreground", action="store_true",
                        help="Don't detach from the terminal")
    parser.add_argument("-d", "--debug", action="store_true",
                        help="Log debug messages")
    parser.add_argument("-p", "--port", type=int, default=None,
                        help="UDP port to listen on (default: services"
                             " database or"
                             f" {constants.DEFAULT_CONFD_PORT}; 0 picks a"
                             " free one)")
    parser.add_argument("-b", "--bind", dest="bind_address", default=None,
                        metavar="ADDRESS",
                        help="Address to bind to (default: 0.0.0.0)")
    parser.add_argument("--syslog", action="store_true",
                        help="Log to syslog instead of the log file")
    parser.add_argument("--no-user-checks", action="store_true",
                        help="Accepted for compatibility (no user checks"
                             " are made)")
    parser.add_argument("--ready-file", default=None,
                        help="Write 'address port pid' here once serving")
    parser.add_argument("--log-file", default=None,
                        help="Log file (default: the conf daemon's log)")
    return parser


def _FileSignature(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class ConfdDaemon:
    """The daemon's state: socket, processor and file watching."""

    def __init__(self, cfg_file: str, hmac_file: str,
                 processor: confd_server.ConfdProcessor | None = None):
        self.cfg_file = cfg_file
        self.hmac_file = hmac_file
        self.processor = processor or confd_server.ConfdProcessor()
        self.sock: socket.socket | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = False
        self._cfg_dirty: asyncio.Event | None = None
        self._cfg_sig: tuple[int, int, int, int] | None = None
        self._key_sig: tuple[int, int, int, int] | None = None
        self.reloads = 0

    # --- Files -------------------------------------------------------------

    def LoadKey(self) -> bool:
        """(Re)read the HMAC key; keep the old one if that fails."""
        sig = _FileSignature(self.hmac_file)
        try:
            key = confd_client.ReadHmacKey(self.hmac_file)
        except errors.ConfdClientError as err:
            logging.error("%s; %s", err, "keeping the previous key"
                          if self.processor.hmac_key else "no key loaded")
            return False
        self._key_sig = sig
        if key != self.processor.hmac_key:
            if self.processor.hmac_key is not None:
                logging.info("Loaded a new HMAC key from %s", self.hmac_file)
            self.processor.SetKey(key)
        return True

    def LoadConfig(self) -> bool:
        """(Re)read the configuration; keep the old one if that fails."""
        sig = _FileSignature(self.cfg_file)
        try:
            snapshot = confd_server.LoadSnapshot(self.cfg_file)
        except (errors.GenericError, OSError, ValueError, TypeError,
                KeyError, AttributeError) as err:
            logging.error("Cannot load the configuration: %s", err)
            return False
        self._Install(snapshot, sig)
        return True

    def _Install(self, snapshot: confd_server.ConfigSnapshot,
                 sig: tuple[int, int, int, int] | None) -> None:
        self._cfg_sig = sig
        old = self.processor.snapshot.serial
        self.processor.SetSnapshot(snapshot)
        self.reloads += 1
        logging.info("Configuration loaded (serial %s, was %s)",
                     snapshot.serial, old)

    async def _ReloadConfig(self) -> None:
        sig = _FileSignature(self.cfg_file)
        loop = asyncio.get_running_loop()
        try:
            snapshot = await loop.run_in_executor(
                None, confd_server.LoadSnapshot, self.cfg_file)
        except Exception as err:  # keep serving the old configuration
            logging.error("Cannot reload the configuration: %s", err)
            self._cfg_sig = sig  # do not retry until the file changes
            return
        self._Install(snapshot, sig)

    def _Changed(self, path: str) -> None:
        name = os.path.basename(path)
        if path == self.cfg_file or name == os.path.basename(self.cfg_file) \
                and os.path.dirname(path) == os.path.dirname(self.cfg_file):
            assert self._cfg_dirty is not None
            self._cfg_dirty.set()
        if path == self.hmac_file:
            self.LoadKey()

    async def _Reloader(self) -> None:
        assert self._cfg_dirty is not None
        while True:
            await self._cfg_dirty.wait()
            self._cfg_dirty.clear()
            await self._ReloadConfig()
            # Coalesce a burst of writes into one more reload at most
            await asyncio.sleep(constants.CONFD_CONFIG_RELOAD_RATELIMIT)

    async def _Poller(self) -> None:
        """Check the files now and then, in case inotify missed a change."""
        while True:
            await asyncio.sleep(constants.CONFD_CONFIG_RELOAD_TIMEOUT)
            if _FileSignature(self.cfg_file) != self._cfg_sig:
                assert self._cfg_dirty is not None
                self._cfg_dirty.set()
            if _FileSignature(self.hmac_file) != self._key_sig:
                self.LoadKey()

    async def _Watcher(self) -> None:
        try:
            from asyncinotify import Inotify, Mask
        except ImportError as err:
            logging.warning("No inotify (%s); checking the files every %ss",
                            err, constants.CONFD_CONFIG_RELOAD_TIMEOUT)
            return
        mask = (Mask.CLOSE_WRITE | Mask.MOVED_TO | Mask.CREATE | Mask.DELETE
                | Mask.ATTRIB)
        dirs = sorted({os.path.dirname(self.cfg_file),
                       os.path.dirname(self.hmac_file)})
        with Inotify() as inotify:
            for directory in dirs:
                try:
                    inotify.add_watch(directory, mask)
                except OSError as err:
                    logging.warning("Cannot watch %s (%s); checking it every"
                                    " %ss", directory, err,
                                    constants.CONFD_CONFIG_RELOAD_TIMEOUT)
            async for event in inotify:
                if event.path is None:
                    # e.g. a queue overflow: look at everything
                    self._Changed(self.cfg_file)
                    self._Changed(self.hmac_file)
                    continue
                self._Changed(str(event.path))

    # --- Serving -----------------------------------------------------------

    def Bind(self, address: str, port: int) -> tuple[str, int]:
        """Open the UDP socket; return the address and port bound."""
        family = utils.GetAddressFamily(address)
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            # No SO_REUSEADDR: UDP has no TIME_WAIT, and on Linux it would
            # let a second daemon share the port silently
            sock.bind((address, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        bound = sock.getsockname()
        return bound[0], bound[1]

    def _ServeDatagrams(self) -> None:
        """The receiving thread: answer datagrams until stopped.

        A blocking read in a plain loop is the cheapest way to wait for
        the next datagram (no event loop round per datagram); the event
        loop thread only swaps configurations and keys in.
        """
        assert self.sock is not None
        recv = self.sock.recvfrom
        send = self.sock.sendto
        handle = self.processor.HandleDatagram
        while not self._stopping:
            try:
                data, addr = recv(_RECV_SIZE)
            except OSError as err:
                if self._stopping:
                    break
                logging.debug("Receiving: %s", err)
                continue
            if self._stopping:
                break
            try:
                reply = handle(data, addr)
            except Exception:  # never let one datagram stop the daemon
                logging.exception("Unexpected error handling a datagram"
                                  " from %s", addr)
                continue
            if reply is not None:
                try:
                    send(reply, addr)
                except OSError as err:
                    logging.debug("Cannot answer %s: %s", addr, err)

    def _RunServer(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._ServeDatagrams()
        except BaseException:
            logging.exception("The receiving thread failed")
        finally:
            if not self._stopping:
                loop.call_soon_threadsafe(self.Stop)

    def _WakeServer(self) -> None:
        """Unblock the receiving thread (a datagram to our own socket)."""
        assert self.sock is not None
        address, port = self.sock.getsockname()[:2]
        if address in ("0.0.0.0", "::"):
            address = "127.0.0.1" if address == "0.0.0.0" else "::1"
        try:
            with socket.socket(self.sock.family, socket.SOCK_DGRAM) as waker:
                waker.sendto(b"", (address, port))
        except OSError as err:
            logging.warning("Cannot wake the receiving thread: %s", err)

    def Stop(self) -> None:
        """Make :meth:`Serve` return."""
        if self._stop is not None:
            self._stop.set()

    async def Serve(self, ready_fn: Callable[[], None] | None = None) -> None:
        """Serve until :meth:`Stop` (or SIGTERM/SIGINT)."""
        assert self.sock is not None
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._cfg_dirty = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.Stop)
        self._stopping = False
        self.sock.setblocking(True)
        thread = threading.Thread(target=self._RunServer, args=(loop,),
                                  name="confd-udp", daemon=True)
        thread.start()
        tasks = [asyncio.create_task(coro) for coro in
                 (self._Watcher(), self._Reloader(), self._Poller())]
        try:
            if ready_fn:
                ready_fn()
            await self._stop.wait()
        finally:
            self._stopping = True
            self._WakeServer()
            await loop.run_in_executor(None, thread.join, 10)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if not thread.is_alive():
                self.sock.close()
            # Already stopping: more signals must not kill the cleanup
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
                signal.signal(signum, signal.SIG_IGN)
        logging.info("Statistics: %s", dict(self.processor.stats))


def _MakeDirs() -> None:
    for path in (pathutils.RUN_DIR, pathutils.LOG_DIR):
        os.makedirs(path, mode=0o755, exist_ok=True)


def Main(argv: list[str] | None = None) -> int:
    """Run the conf daemon; return its exit code."""
    options = BuildParser().parse_args(argv)
    port = daemon_util.GetDaemonPort(constants.CONFD) \
        if options.port is None else options.port
    address = options.bind_address or "0.0.0.0"
    if not 0 <= port < 65536:
        print(f"{constants.CONFD}: invalid port {port}", file=sys.stderr)
        return constants.EXIT_FAILURE
    try:
        utils.GetAddressFamily(address)
    except errors.GenericError:
        print(f"{constants.CONFD}: invalid bind address '{address}'",
              file=sys.stderr)
        return constants.EXIT_FAILURE
    try:
        _MakeDirs()
    except OSError as err:
        print(f"{constants.CONFD}: cannot create directories: {err}",
              file=sys.stderr)
        return constants.EXIT_FAILURE
    daemon_util.SetupLogging(
        constants.CONFD,
        options.log_file or pathutils.GetLogFilename(constants.CONFD),
        debug=options.debug, stderr_logging=options.foreground,
        syslog=options.syslog)

    daemon = ConfdDaemon(pathutils.CLUSTER_CONF_FILE, pathutils.CONFD_HMAC_KEY)
    if not daemon.LoadKey():
        logging.error("Cannot start without the HMAC key %s",
                      pathutils.CONFD_HMAC_KEY)
        return constants.EXIT_FAILURE
    if not daemon.LoadConfig():
        logging.warning("Starting without a configuration; queries get an"
                        " error until %s can be read",
                        pathutils.CLUSTER_CONF_FILE)
    try:
        bound_address, bound_port = daemon.Bind(address, port)
    except OSError as err:
        logging.error("Cannot listen on %s:%s (UDP): %s", address, port, err)
        return constants.EXIT_FAILURE

    notify_ready = None
    if not options.foreground:
        notify_ready = daemon_util.Daemonize()

    pidfile = pathutils.GetDaemonPidFile(constants.CONFD)
    try:
        pid_fd = utils.WritePidFile(pidfile)
    except (errors.PidFileLockError, OSError) as err:
        logging.error("Cannot write the pid file: %s", err)
        return constants.EXIT_FAILURE

    def _Ready() -> None:
        # Logged before the ready file exists: whoever waits for that file
        # finds the line in the log
        logging.info("%s %s serving on %s:%s (UDP, pid %s)", constants.CONFD,
                     constants.RELEASE_VERSION, bound_address, bound_port,
                     os.getpid())
        if options.ready_file:
            daemon_util.WriteReadyFile(options.ready_file, bound_address,
                                       bound_port)
        if notify_ready:
            notify_ready()

    try:
        asyncio.run(daemon.Serve(_Ready))
        logging.info("%s stopped", constants.CONFD)
    finally:
        utils.RemovePidFile(pidfile)
        os.close(pid_fd)
    return constants.EXIT_SUCCESS
