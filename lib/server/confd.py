"""ganeti-confd: the configuration query daemon (UDP, master candidates).

Answers confd queries (:mod:`ganeti.confd.server`) from an in-memory copy
of ``config.data``, read without taking ownership of it. The HMAC key
(``hmac.key``) is watched like the configuration (below, without the
delays), so a renewed key is used without a restart; a missing key at
startup is fatal.

When the configuration is reloaded: a loaded configuration is known by the
signature of the file it came from (device, inode, size, mtime: one
``stat``), and the file is parsed again only when its signature differs
from the last one handled, loaded or not. That happens

- on demand: before answering a query (one that is answered: signed with
  the key, with a valid time and rsalt, see ``ConfdProcessor.before_answer``)
  the receiving thread compares the file's signature with the loaded one
  and, if they differ, loads the file first. An answer is thus never older
  than the file was when the query arrived, and datagrams that are not
  answered never make the daemon parse anything;
- in the background: inotify (``asyncinotify``, through the directory, as
  the master replaces the file by an atomic rename) marks the file changed,
  and the reload runs once no further change was seen for
  ``CONFD_CONFIG_RELOAD_QUIET`` seconds, but never later than
  ``CONFD_CONFIG_RELOAD_MAXDELAY`` seconds after the first change not yet
  handled. A burst of writes (jobs saving the configuration several times
  a second) costs one parse at its end, a steady stream one parse every
  MAXDELAY seconds, and the several events of one replace one parse.
  Background reloads also keep to a CPU budget: the next one waits at
  least ``CONFD_CONFIG_RELOAD_CPU_FACTOR`` times the CPU time the previous
  load took (a large configuration is loaded less often in the
  background; queries still get it fresh, on demand). The files are also
  checked every ``CONFD_CONFIG_RELOAD_TIMEOUT`` seconds in case an event
  was missed.

One lock serialises the loads, so a query and the background never parse
the same file twice. A file that cannot be read leaves the previous
configuration in use (at startup: every query answers an error) and is
not tried again until its signature changes.

A dedicated thread reads the UDP socket (blocking reads in a tight loop)
and answers each datagram in line; the main thread runs an asyncio loop
that watches the files and runs background loads in a worker thread. A
load swaps the new snapshot in by an atomic reference swap. SIGTERM and
SIGINT stop the daemon.

Options follow ganeti-confd(8); ``--ready-file`` and ``--log-file`` are
additions for virtual clusters and tests, as are two options left out of
``--help``: ``--reload-quiet SECONDS``, ``--reload-maxdelay SECONDS`` and
``--reload-cpu-factor N`` replace ``CONFD_CONFIG_RELOAD_QUIET``,
``CONFD_CONFIG_RELOAD_MAXDELAY`` and ``CONFD_CONFIG_RELOAD_CPU_FACTOR``
(tests use them to make one of the triggers impossible).
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
import time
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
                        help="Do not drop privileges even when run as root")
    parser.add_argument("--ready-file", default=None,
                        help="Write 'address port pid' here once serving")
    parser.add_argument("--log-file", default=None,
                        help="Log file (default: the conf daemon's log)")
    # For tests and benchmarks (see the module docstring)
    parser.add_argument("--reload-quiet", type=_Seconds,
                        default=constants.CONFD_CONFIG_RELOAD_QUIET,
                        help=argparse.SUPPRESS)
    parser.add_argument("--reload-maxdelay", type=_Seconds,
                        default=constants.CONFD_CONFIG_RELOAD_MAXDELAY,
                        help=argparse.SUPPRESS)
    parser.add_argument("--reload-cpu-factor", type=_Seconds,
                        default=constants.CONFD_CONFIG_RELOAD_CPU_FACTOR,
                        help=argparse.SUPPRESS)
    return parser


def _Seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"invalid number of seconds"
                                         f" '{value}'")
    return seconds


Signature = tuple[int, int, int, int]

#: The signature handled before any load was tried (no file has it)
_UNTRIED: Signature = (-1, -1, -1, -1)


def _FileSignature(path: str) -> Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class ConfdDaemon:
    """The daemon's state: socket, processor and file watching.

    ``reloads`` counts the configurations loaded (startup included).
    """

    def __init__(self, cfg_file: str, hmac_file: str,
                 processor: confd_server.ConfdProcessor | None = None,
                 reload_quiet: float = constants.CONFD_CONFIG_RELOAD_QUIET,
                 reload_maxdelay: float =
                 constants.CONFD_CONFIG_RELOAD_MAXDELAY,
                 reload_cpu_factor: float =
                 constants.CONFD_CONFIG_RELOAD_CPU_FACTOR):
        self.cfg_file = cfg_file
        self.hmac_file = hmac_file
        self.processor = processor or confd_server.ConfdProcessor()
        self.processor.before_answer = self._BeforeAnswer
        self.reload_quiet = reload_quiet
        self.reload_maxdelay = reload_maxdelay
        self.reload_cpu_factor = reload_cpu_factor
        # CPU seconds the last load took, and when it ended (monotonic)
        self._load_cpu = 0.0
        self._load_end = 0.0
        self.sock: socket.socket | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = False
        self._cfg_dirty: asyncio.Event | None = None
        # time.monotonic() of the first change not yet handled
        self._dirty_since: float | None = None
        # Held while loading: the receiving thread and the background
        # worker never parse at the same time, nor the same file twice
        self._load_lock = threading.Lock()
        # The signature last handled, loaded or failed; read without the
        # lock (a reference), written under it
        self._cfg_sig: Signature | None = _UNTRIED
        self._key_sig: Signature | None = None
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
        """Read the configuration (at startup); False if that failed."""
        self.ReloadIfChanged("at startup")
        return self.processor.snapshot.data is not None

    def ReloadIfChanged(self, trigger: str) -> bool:
        """Load the configuration if the file changed since last handled.

        Safe from any thread. The file is parsed only if its signature
        differs from the one last handled (loaded, or failed to load: a
        broken file is not parsed again until it changes); a failure keeps
        the configuration in use. ``trigger`` says who asks, for the log.
        Returns whether a new configuration was installed.
        """
        if _FileSignature(self.cfg_file) == self._cfg_sig:
            return False  # the usual case, without the lock
        with self._load_lock:
            # Taken before reading: if the file is replaced while it is
            # read, the newer signature differs and gets loaded later
            sig = _FileSignature(self.cfg_file)
            if sig == self._cfg_sig:
                return False  # loaded meanwhile by the other thread
            cpu_start = time.thread_time()
            try:
                snapshot = confd_server.LoadSnapshot(self.cfg_file)
            except Exception as err:  # keep serving the old configuration
                self._NoteLoad(cpu_start)
                self._cfg_sig = sig
                logging.error("Cannot %s the configuration (%s): %s",
                              "load" if self.processor.snapshot.data is None
                              else "reload", trigger, err)
                return False
            self._NoteLoad(cpu_start)
            self._Install(snapshot, sig, trigger)
            return True

    def _NoteLoad(self, cpu_start: float) -> None:
        self._load_cpu = time.thread_time() - cpu_start
        self._load_end = time.monotonic()

    def BackgroundReloadDelay(self) -> float:
        """Seconds until a background reload keeps to the CPU budget."""
        return max(0.0, self._load_end + self._load_cpu * self.reload_cpu_factor
                   - time.monotonic())

    def _Install(self, snapshot: confd_server.ConfigSnapshot,
                 sig: Signature | None, trigger: str) -> None:
        self._cfg_sig = sig
        old = self.processor.snapshot.serial
        self.processor.SetSnapshot(snapshot)
        self.reloads += 1
        logging.info("Configuration loaded (serial %s, was %s; %s)",
                     snapshot.serial, old, trigger)

    def _BeforeAnswer(self) -> None:
        """The processor's hook: answer from the file's current contents."""
        self.ReloadIfChanged("on a query")

    def _MarkChanged(self) -> None:
        """Note a (possible) change of the configuration file."""
        assert self._cfg_dirty is not None
        if self._dirty_since is None:
            self._dirty_since = time.monotonic()
        self._cfg_dirty.set()

    def _Changed(self, path: str) -> None:
        name = os.path.basename(path)
        if path == self.cfg_file or name == os.path.basename(self.cfg_file) \
                and os.path.dirname(path) == os.path.dirname(self.cfg_file):
            self._MarkChanged()
        if path == self.hmac_file:
            self.LoadKey()

    async def _Reloader(self) -> None:
        """Reload in the background once changes pause (or MAXDELAY)."""
        assert self._cfg_dirty is not None
        dirty = self._cfg_dirty
        loop = asyncio.get_running_loop()
        while True:
            await dirty.wait()
            # One replace can give several events (the rename; CREATE and
            # CLOSE_WRITE when written in place; ATTRIB when the mode,
            # owner or times are set after the rename), a burst of
            # replaces many more: wait until they stop. Events of a
            # replace already loaded find its signature handled
            while True:
                dirty.clear()
                since = self._dirty_since or time.monotonic()
                wait = min(self.reload_quiet,
                           since + self.reload_maxdelay - time.monotonic())
                if wait <= 0:
                    break
                try:
                    await asyncio.wait_for(dirty.wait(), wait)
                except TimeoutError:
                    break  # quiet long enough
            # Changes arriving meanwhile are absorbed by the same reload
            budget = self.BackgroundReloadDelay()
            if budget > 0:
                logging.debug("Background reload in %.1f s (CPU budget: the"
                              " last load took %.3f s)", budget, self._load_cpu)
                await asyncio.sleep(budget)
            self._dirty_since = None
            dirty.clear()
            await loop.run_in_executor(None, self.ReloadIfChanged,
                                       "in the background")

    async def _Poller(self) -> None:
        """Check the files now and then, in case inotify missed a change."""
        while True:
            await asyncio.sleep(constants.CONFD_CONFIG_RELOAD_TIMEOUT)
            if _FileSignature(self.cfg_file) != self._cfg_sig:
                self._MarkChanged()
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
        the next datagram (no event loop round per datagram). A query
        finding the configuration file changed loads it here, before
        answering (the processor's ``before_answer``); the event loop
        thread swaps keys and background-loaded configurations in.
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

    daemon = ConfdDaemon(pathutils.CLUSTER_CONF_FILE, pathutils.CONFD_HMAC_KEY,
                         reload_quiet=options.reload_quiet,
                         reload_maxdelay=options.reload_maxdelay,
                         reload_cpu_factor=options.reload_cpu_factor)
    try:
        bound_address, bound_port = daemon.Bind(address, port)
    except OSError as err:
        logging.error("Cannot listen on %s:%s (UDP): %s", address, port, err)
        return constants.EXIT_FAILURE
    # Unprivileged from here on: the key and the configuration are read as
    # the confd user, as every later reload will be
    if not options.no_user_checks:
        try:
            daemon_util.SwitchUser(constants.CONFD, [
                (pathutils.DATA_DIR, os.R_OK | os.X_OK),
                (pathutils.CONFD_HMAC_KEY, os.R_OK),
                (pathutils.CLUSTER_CONF_FILE, os.R_OK),
                (pathutils.RUN_DIR, os.W_OK | os.X_OK)])
        except errors.GenericError as err:
            logging.error("%s", err)
            print(f"{constants.CONFD}: {err}", file=sys.stderr)
            return constants.EXIT_FAILURE
    if not daemon.LoadKey():
        logging.error("Cannot start without the HMAC key %s",
                      pathutils.CONFD_HMAC_KEY)
        return constants.EXIT_FAILURE
    if not daemon.LoadConfig():
        logging.warning("Starting without a configuration; queries get an"
                        " error until %s can be read",
                        pathutils.CLUSTER_CONF_FILE)

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
