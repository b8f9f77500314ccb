"""ganeti-noded: the node daemon.

Serves node RPC (:mod:`ganeti.rpc`) over HTTPS: ``PUT /<call>`` with the
JSON list of arguments, answered with ``[success, payload]``. Only clients
presenting a certificate signed by the cluster certificate are served.

The daemon forks one child per connection
(:class:`ganeti.http.forking.ForkingHttpServer`): the parent only accepts,
forks and reaps; a child does the TLS handshake and serves the requests of
its kept-open connection one after another until the connection ends or
idles out. So a call that crashes the interpreter, leaks or hangs takes
down its own child only, while the master, which keeps its connections
open, pays for a fork and a TLS handshake once per connection, not per
call (Ganeti forks per request; see doc/design-noded-rpc.rst). At most
``--max-clients`` calls run at the same time. ``--threaded`` serves every
connection in one process instead (an event-loop thread and worker
threads, :class:`ganeti.http.server.ThreadedHttpServer`), for comparison.
SIGTERM stops the daemon, abandoning running calls; SIGUSR1 lets them
answer first. Unless ``--no-mlock`` is given the daemon and its children
lock their memory in RAM; log records that cannot be written to the log
file go to the console.

Options follow ganeti-noded(8); ``--ready-file``, ``--log-file``,
``--max-body-size`` and ``--request-timeout`` are additions for virtual
clusters and tests.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import socket
import ssl
import struct
import sys

from ganeti import constants, errors, http, pathutils, utils
from ganeti import daemon as daemon_util
from ganeti.http import forking as http_forking
from ganeti.http import server as http_server
from ganeti.rpc.dispatch import RpcDispatcher
from ganeti.utils import mlock

_SIOCGIFADDR = 0x8915
#: Open connections from one client address: the master keeps one per
#: pooled RPC handle (up to 32) and tools add a few
_MAX_CONNECTIONS_PER_ADDRESS = 128


class NodeRequestHandler(http_server.HttpServerHandler):
    """Maps ``PUT /<call>`` requests to the RPC dispatcher."""

    def __init__(self, dispatcher: RpcDispatcher):
        self.dispatcher = dispatcher

    @staticmethod
    def _CallName(path: str) -> str:
        name = path.split("?", 1)[0]
        return name[1:] if name.startswith("/") else name

    def CheckRequest(self, req: http_server.HttpServerRequest) -> None:
        """Refuse wrong methods, unknown calls and bodies without a length."""
        if req.method != http.HTTP_PUT:
            raise http.HttpMethodNotAllowed(
                f"Method {req.method} not allowed; node RPC calls use"
                f" {http.HTTP_PUT}", headers={http.HTTP_ALLOW: http.HTTP_PUT})
        name = self._CallName(req.path)
        if self.dispatcher.GetCall(name) is None:
            raise http.HttpNotFound(f"Unknown RPC call '{name}'")
        if req.content_length is None:
            raise http.HttpLengthRequired(
                "Node RPC requests need a Content-Length header")

    def HandleRequest(self, req: http_server.HttpServerRequest
                      ) -> http_server.HttpResponse:
        """Run the call; its outcome, success or failure, is a 200 answer."""
        self.CheckRequest(req)
        body = self.dispatcher.Dispatch(self._CallName(req.path), req.body)
        return http_server.HttpResponse(body=body)


def GetInterfaceAddress(interface: str) -> str:
    """Return the IPv4 address of a network interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR,
                                 struct.pack("256s", interface.encode()[:15]))
        except OSError as err:
            raise errors.GenericError(f"Cannot get the address of interface"
                                      f" '{interface}': {err}") from err
    return socket.inet_ntoa(packed[20:24])


def BuildParser() -> argparse.ArgumentParser:
    """The command line of ganeti-noded."""
    parser = argparse.ArgumentParser(
        prog=constants.NODED, description="Ganeti node daemon")
    parser.add_argument("-f", "--foreground", action="store_true",
                        help="Don't detach from the terminal")
    parser.add_argument("-d", "--debug", action="store_true",
                        help="Log debug messages")
    parser.add_argument("-p", "--port", type=int, default=None,
                        help="Port to listen on (default: services database"
                             f" or {constants.DEFAULT_NODED_PORT}; 0 picks a"
                             " free one)")
    bind = parser.add_mutually_exclusive_group()
    bind.add_argument("-b", "--bind", dest="bind_address", default=None,
                      metavar="ADDRESS",
                      help="Address to bind to (default: 0.0.0.0)")
    bind.add_argument("-i", "--interface", default=None,
                      help="Bind to the address of this interface")
    parser.add_argument("--max-clients", type=int,
                        default=constants.NODED_MAX_CLIENTS,
                        help="Requests served at the same time; more wait")
    parser.add_argument("--max-connections", type=int,
                        default=constants.NODED_MAX_CONNECTIONS,
                        help="Open connections allowed, idle ones included")
    parser.add_argument("--max-connections-per-address", type=int,
                        default=_MAX_CONNECTIONS_PER_ADDRESS,
                        help="Open connections allowed from one client address")
    parser.add_argument("--keepalive-timeout", type=float,
                        default=constants.NODED_KEEPALIVE_TIMEOUT,
                        help="Seconds an idle connection is kept open")
    parser.add_argument("--no-mlock", dest="mlock", action="store_false",
                        help="Don't lock the daemon's memory in RAM")
    parser.add_argument("--threaded", action="store_true",
                        help="Serve every connection in a thread of one process"
                             " instead of forking a child per connection")
    parser.add_argument("--syslog", action="store_true",
                        help="Log to syslog instead of the log file")
    parser.add_argument("--no-ssl", dest="ssl", action="store_false",
                        help="Serve plain HTTP without client authentication"
                             " (testing only)")
    parser.add_argument("-K", "--ssl-key", default=None,
                        help="TLS key file (default: the cluster's server.pem)")
    parser.add_argument("-C", "--ssl-cert", default=None,
                        help="TLS certificate file (default: server.pem)")
    parser.add_argument("--ready-file", default=None,
                        help="Write 'address port pid' here once serving")
    parser.add_argument("--log-file", default=None,
                        help="Log file (default: the node daemon's log)")
    parser.add_argument("--max-body-size", type=int,
                        default=constants.NODED_MAX_BODY_SIZE,
                        help="Largest request body accepted, in bytes")
    parser.add_argument("--request-timeout", type=float,
                        default=constants.NODED_REQUEST_READ_TIMEOUT,
                        help="Seconds a client has to send its request (and to"
                             " complete the TLS handshake)")
    return parser


def _MakeDirs() -> None:
    for path in (pathutils.RUN_DIR, pathutils.LOG_DIR, pathutils.LOCK_DIR):
        os.makedirs(path, mode=0o755, exist_ok=True)


def _MakeServer(options: argparse.Namespace, handler: NodeRequestHandler,
                ssl_context: ssl.SSLContext | None
                ) -> http_server.ThreadedHttpServer | http_forking.ForkingHttpServer:
    """The HTTPS server the options ask for (not yet bound)."""
    opts = http_server.ServerOptions(
        server_name=f"{constants.NODED}/{constants.RELEASE_VERSION}",
        request_timeout=options.request_timeout,
        max_header_size=constants.NODED_MAX_HEADER_SIZE,
        max_body_size=options.max_body_size,
        require_client_cert=options.ssl)
    cls = http_server.ThreadedHttpServer if options.threaded \
        else http_forking.ForkingHttpServer
    return cls(handler, ssl_context, opts,
               max_clients=options.max_clients,
               max_connections=options.max_connections,
               max_connections_per_address=options.max_connections_per_address,
               keepalive_timeout=options.keepalive_timeout,
               term_timeout=constants.NODED_TERM_TIMEOUT)


def _LockMemory(server: http_server.ThreadedHttpServer
                | http_forking.ForkingHttpServer) -> None:
    """Lock the daemon's memory in RAM (seed 003), children's included."""
    if isinstance(server, http_server.ThreadedHttpServer):
        # Locked as they are touched: the stacks of the worker threads
        # would otherwise be locked in full when they are mapped
        mlock.Mlockall(onfault=True)
        return
    # The parent (single-threaded) in full, now and what it maps later
    if not mlock.Mlockall():
        return  # logged; the children would fail the same way
    # Neither the locks nor MCL_FUTURE pass to a forked child: each locks
    # again, as pages are touched (the parent's pages it shares are locked
    # by the parent already; locking in full would copy them)
    server.child_init = _LockChildMemory


def _LockChildMemory() -> None:
    mlock.Mlockall(onfault=True)


def Main(argv: list[str] | None = None) -> int:
    """Run the node daemon; return its exit code."""
    options = BuildParser().parse_args(argv)
    port = daemon_util.GetDaemonPort(constants.NODED) if options.port is None \
        else options.port
    if options.interface:
        try:
            address = GetInterfaceAddress(options.interface)
        except errors.GenericError as err:
            print(f"{constants.NODED}: {err}", file=sys.stderr)
            return constants.EXIT_FAILURE
    else:
        address = options.bind_address or "0.0.0.0"

    try:
        _MakeDirs()
    except OSError as err:
        print(f"{constants.NODED}: cannot create directories: {err}", file=sys.stderr)
        return constants.EXIT_FAILURE
    daemon_util.SetupLogging(constants.NODED,
                             options.log_file or pathutils.GetLogFilename(constants.NODED),
                             debug=options.debug, stderr_logging=options.foreground,
                             syslog=options.syslog)

    ssl_context = None
    if options.ssl:
        params = http.HttpSslParams(
            ssl_key_path=options.ssl_key or pathutils.NODED_CERT_FILE,
            ssl_cert_path=options.ssl_cert or pathutils.NODED_CERT_FILE)
        try:
            ssl_context = http.MakeServerSslContext(params)
        except (OSError, ValueError) as err:
            logging.error("Cannot load the TLS key or certificate (%s, %s): %s",
                          params.ssl_key_path, params.ssl_cert_path, err)
            return constants.EXIT_FAILURE
    else:
        logging.warning("Serving without TLS: any client can make node RPC calls")

    noded_pid = os.getpid()
    dispatcher = RpcDispatcher(quit_fn=lambda: os.kill(noded_pid, signal.SIGUSR1))
    dispatcher.LoadAll()

    server = _MakeServer(options, NodeRequestHandler(dispatcher), ssl_context)
    try:
        bound_address, bound_port = server.Bind(address, port)
    except OSError as err:
        logging.error("Cannot listen on %s:%s: %s", address, port, err)
        return constants.EXIT_FAILURE

    notify_ready = None
    if not options.foreground:
        notify_ready = daemon_util.Daemonize()
        noded_pid = os.getpid()

    pidfile = pathutils.GetDaemonPidFile(constants.NODED)
    try:
        pid_fd = utils.WritePidFile(pidfile)
    except (errors.PidFileLockError, OSError) as err:
        logging.error("Cannot write the pid file: %s", err)
        return constants.EXIT_FAILURE

    if options.mlock:
        # After detaching: memory locks do not survive a fork
        _LockMemory(server)

    try:
        if isinstance(server, http_forking.ForkingHttpServer):
            # A child keeping the pid file's lock would make a new daemon
            # think this one still runs
            server.close_in_child.append(pid_fd)
        if options.ready_file:
            daemon_util.WriteReadyFile(options.ready_file, bound_address, bound_port)
        logging.info("%s %s serving on %s:%s (pid %s, %s)", constants.NODED,
                     constants.RELEASE_VERSION, bound_address, bound_port,
                     os.getpid(), "threads" if options.threaded
                     else "a child per connection")
        if notify_ready:
            notify_ready()
        server.Serve()
        logging.info("%s stopped", constants.NODED)
    finally:
        utils.RemovePidFile(pidfile)
        os.close(pid_fd)
    return constants.EXIT_SUCCESS
