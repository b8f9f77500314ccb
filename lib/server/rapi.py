"""ganeti-rapi: the remote API daemon.

Listens with HTTPS (``rapi.pem``, with ``--ssl-chain``'s intermediate
certificates) on port 5080 (``-p``) of ``-b ADDRESS`` (default 0.0.0.0) or
of the IPv4 address of ``-i INTERFACE`` and answers Ganeti's RAPI version 2 by talking to the
master daemon over luxi (:mod:`ganeti.rapi.server`). Started as root
under privilege separation (:mod:`ganeti.runtime`), it becomes the
``gnt-rapi`` user once it has bound its port and read its certificate,
before detaching; it then reads the users file and reaches the master's
socket through its groups (``gnt-rapi``'s group owns ``rapi/``, and
``gnt-admin`` the socket directory). ``--no-user-checks`` keeps it as it is.
SIGHUP re-reads the users file (it is also re-read whenever it changes);
SIGTERM/SIGINT stop the daemon.

How daemon-util starts it: ``ganeti-rapi -b ADDRESS -p PORT`` (plus
``--require-authentication`` when wanted), with ``GANETI_ROOTDIR`` set
for a virtual-cluster node.
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

from ganeti import constants, errors, pathutils, utils
from ganeti import daemon as daemon_util
from ganeti.rapi import auth, baserlib
from ganeti.rapi import server as rapi_server


def BuildParser() -> argparse.ArgumentParser:
    """The command line of ganeti-rapi."""
    parser = argparse.ArgumentParser(prog=constants.RAPI,
                                     description="Ganeti remote API daemon")
    parser.add_argument("-f", "--foreground", action="store_true",
                        help="Don't detach from the terminal")
    parser.add_argument("-d", "--debug", action="store_true",
                        help="Log debug messages")
    parser.add_argument("-p", "--port", type=int, default=None,
                        help="TCP port (default: services database or"
                             f" {constants.DEFAULT_RAPI_PORT}; 0 picks a free one)")
    parser.add_argument("-b", "--bind", dest="bind_address", default=None,
                        metavar="ADDRESS", help="Address to bind to (default: 0.0.0.0)")
    parser.add_argument("-i", "--interface", dest="interface", default=None,
                        metavar="INTERFACE",
                        help="Bind to the (IPv4) address of this network interface"
                             " (instead of -b)")
    parser.add_argument("--max-clients", type=int,
                        default=rapi_server.DEFAULT_MAX_CLIENTS,
                        help="Most simultaneous client connections"
                             f" (default {rapi_server.DEFAULT_MAX_CLIENTS})")
    parser.add_argument("--require-authentication", action="store_true",
                        help="Require authentication for every request")
    parser.add_argument("--no-ssl", action="store_true",
                        help="Serve plain HTTP (for debugging only)")
    parser.add_argument("-K", "--ssl-key", default=None,
                        help="TLS key file (default: the RAPI certificate file)")
    parser.add_argument("-C", "--ssl-cert", default=None,
                        help="TLS certificate file (default: rapi.pem)")
    parser.add_argument("--ssl-chain", default=None, metavar="SSL_CHAIN_FILE",
                        help="Intermediate certificates to present with the"
                             " certificate (PEM)")
    parser.add_argument("--users-file", default=None,
                        help="Users file (default: the cluster's rapi/users)")
    parser.add_argument("--syslog", action="store_true",
                        help="Log to syslog instead of the log file")
    parser.add_argument("--no-user-checks", action="store_true",
                        help="Do not drop privileges even when run as root")
    parser.add_argument("--ready-file", default=None,
                        help="Write 'address port pid' here once serving")
    parser.add_argument("--log-file", default=None,
                        help="Log file (default: the RAPI daemon's log)")
    return parser


#: ioctl reading an interface's IPv4 address (linux/sockios.h)
_SIOCGIFADDR = 0x8915


def GetInterfaceAddress(interface: str) -> str:
    """The IPv4 address of a network interface (``-i``).

    @raise errors.GenericError: naming the interface if it does not exist or
        has no IPv4 address
    """
    if not interface or len(interface) >= 16 or "/" in interface:
        raise errors.GenericError(f"invalid interface name '{interface}'")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            answer = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR,
                                 struct.pack("256s", interface.encode()))
        except OSError as err:
            raise errors.GenericError(
                f"cannot find an IPv4 address of interface '{interface}':"
                f" {err.strerror}") from None
    return socket.inet_ntoa(answer[20:24])


def Main(argv: list[str] | None = None) -> int:
    """Run the RAPI daemon; return its exit code."""
    options = BuildParser().parse_args(argv)
    port = daemon_util.GetDaemonPort(constants.RAPI) \
        if options.port is None else options.port
    if options.interface is not None:
        if options.bind_address is not None:
            print(f"{constants.RAPI}: give either -b or -i, not both", file=sys.stderr)
            return constants.EXIT_FAILURE
        try:
            options.bind_address = GetInterfaceAddress(options.interface)
        except errors.GenericError as err:
            print(f"{constants.RAPI}: {err}", file=sys.stderr)
            return constants.EXIT_FAILURE
    address = options.bind_address or "0.0.0.0"
    if not 0 <= port < 65536:
        print(f"{constants.RAPI}: invalid port {port}", file=sys.stderr)
        return constants.EXIT_FAILURE
    if options.max_clients < 1:
        print(f"{constants.RAPI}: invalid --max-clients {options.max_clients}",
              file=sys.stderr)
        return constants.EXIT_FAILURE
    try:
        utils.GetAddressFamily(address)
    except errors.GenericError:
        print(f"{constants.RAPI}: invalid bind address '{address}'", file=sys.stderr)
        return constants.EXIT_FAILURE
    try:
        for path in (pathutils.RUN_DIR, pathutils.LOG_DIR):
            os.makedirs(path, mode=0o755, exist_ok=True)
    except OSError as err:
        print(f"{constants.RAPI}: cannot create directories: {err}", file=sys.stderr)
        return constants.EXIT_FAILURE
    daemon_util.SetupLogging(
        constants.RAPI, options.log_file or pathutils.GetLogFilename(constants.RAPI),
        debug=options.debug, stderr_logging=options.foreground, syslog=options.syslog)

    ssl_ctx = None
    if not options.no_ssl:
        cert = options.ssl_cert or pathutils.RAPI_CERT_FILE
        try:
            ssl_ctx = rapi_server.MakeSslContext(cert, options.ssl_key,
                                                 chain_file=options.ssl_chain)
        except (OSError, ssl.SSLError) as err:
            logging.error("Cannot load the RAPI certificate %s: %s", cert, err)
            return constants.EXIT_FAILURE
    users = auth.UsersFile(options.users_file or pathutils.RAPI_USERS_FILE)
    users.Get()
    server = rapi_server.RapiServer(
        address, port, ssl_ctx, users, require_auth=options.require_authentication,
        pool=baserlib.LuxiPool(max_idle=options.max_clients),
        max_clients=options.max_clients)
    try:
        bound_address, bound_port = server.Bind()
    except OSError as err:
        logging.error("Cannot listen on %s:%s: %s", address, port, err)
        return constants.EXIT_FAILURE

    # Unprivileged from here on (the port is bound, the key read)
    if not options.no_user_checks:
        try:
            daemon_util.SwitchUser(constants.RAPI, [
                (users.path, os.R_OK),
                (pathutils.SOCKET_DIR, os.X_OK),
                (pathutils.RUN_DIR, os.W_OK | os.X_OK)])
        except errors.GenericError as err:
            logging.error("%s", err)
            print(f"{constants.RAPI}: {err}", file=sys.stderr)
            return constants.EXIT_FAILURE

    notify_ready = None
    if not options.foreground:
        notify_ready = daemon_util.Daemonize()
    pidfile = pathutils.GetDaemonPidFile(constants.RAPI)
    try:
        pid_fd = utils.WritePidFile(pidfile)
    except (errors.PidFileLockError, OSError) as err:
        logging.error("Cannot write the pid file: %s", err)
        return constants.EXIT_FAILURE

    signal.signal(signal.SIGTERM, lambda *_: server.Stop())
    signal.signal(signal.SIGINT, lambda *_: server.Stop())
    signal.signal(signal.SIGHUP, lambda *_: users.Reload())

    def _Ready() -> None:
        if options.ready_file:
            daemon_util.WriteReadyFile(options.ready_file, bound_address, bound_port)
        logging.info("%s %s serving on %s:%s (%s, pid %s)", constants.RAPI,
                     constants.RELEASE_VERSION, bound_address, bound_port,
                     "HTTP" if ssl_ctx is None else "HTTPS", os.getpid())
        if notify_ready:
            notify_ready()

    try:
        server.Serve(_Ready)
        logging.info("%s stopped", constants.RAPI)
    finally:
        try:
            utils.RemovePidFile(pidfile)
        except OSError as err:
            logging.warning("Cannot remove the pid file: %s", err)
        os.close(pid_fd)
    return constants.EXIT_SUCCESS
