#!/usr/bin/env python3
"""Benchmark ganeti-rapi under slow and idle clients: request latency.

Starts a real ganeti-masterd (the integration fixture's one-node cluster)
and a real ganeti-rapi on 127.0.0.1, then measures the latency of
``GET /2/info`` (``--requests`` requests one after the other, each on a
new TLS connection as Ganeti's client makes them, then as many on one
kept-open connection) twice: with no other client, and with ``--slow``
clients that send a request head one header line every
``--slow-interval`` seconds plus ``--idle`` clients that complete the TLS
handshake and say nothing. The other clients live in a separate process
and come from addresses 127.0.2.x and 127.0.3.x (at most 25 per address,
under the daemon's per-address limit); a connection the daemon closes is
opened again. Prints median, 99th percentile and worst latency per case,
the daemon's thread and descriptor counts, and whether the medians and
99th percentiles changed by less than ``TARGET_MS`` (100 ms).

Run as ``.venv/bin/python test/bench/rapi_slowclients.py [--requests 200]
[--slow 200] [--idle 200]``; as root without Ganeti's daemon users, add
``GANETI_USER_PREFIX=root GANETI_GROUP_PREFIX=root`` to the environment.
Every request has a timeout (``--timeout``) and every phase a time limit
(``--max-seconds``); every process started is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import multiprocessing.connection
import os
import selectors
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))

from conftest import Master  # noqa: E402
from rapidaemon import RapiDaemon  # noqa: E402

TARGET_MS = 100.0
PER_ADDRESS = 25
SETUP_TIMEOUT = 30.0


def _Context(cafile: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    return ctx


class _Client:
    """One slow or idle client: TCP connect, TLS handshake, then (slow
    ones) a header line every interval."""

    def __init__(self, kind: str, source: str, sock: socket.socket) -> None:
        self.kind = kind
        self.source = source
        self.sock: socket.socket = sock
        self.connected = False
        self.established = False
        self.next_send = 0.0
        self.lines = 0


class _Crowd:
    """The slow and idle clients (run in a process of their own)."""

    def __init__(self, port: int, cafile: str, slow: int, idle: int,
                 interval: float) -> None:
        self.port = port
        self.ctx = _Context(cafile)
        self.interval = interval
        self.sel = selectors.DefaultSelector()
        self.clients: list[_Client] = []
        self.reopened = 0
        self.failed = 0
        for idx in range(slow):
            self._Open("slow", f"127.0.2.{idx // PER_ADDRESS + 1}")
        for idx in range(idle):
            self._Open("idle", f"127.0.3.{idx // PER_ADDRESS + 1}")

    def _Open(self, kind: str, source: str) -> None:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setblocking(False)
        raw.bind((source, 0))
        raw.connect_ex(("127.0.0.1", self.port))
        client = _Client(kind, source, raw)
        self.clients.append(client)
        self.sel.register(raw, selectors.EVENT_WRITE, client)

    def _Reopen(self, client: _Client) -> None:
        self.clients.remove(client)
        self.sel.unregister(client.sock)
        client.sock.close()
        self.reopened += 1
        self._Open(client.kind, client.source)

    def Established(self) -> int:
        """Connections whose TLS handshake is done."""
        return sum(1 for client in self.clients if client.established)

    def Run(self, until: float, stop: multiprocessing.connection.Connection | None = None,
            target: int | None = None) -> None:
        """Drive handshakes and trickles until ``until``, a message on
        ``stop``, or (with ``target``) that many established connections."""
        while time.monotonic() < until:
            if target is not None and self.Established() >= target:
                return
            if stop is not None and stop.poll():
                return
            now = time.monotonic()
            wait = min([c.next_send for c in self.clients
                        if c.established and c.kind == "slow"] + [now + 0.2]) - now
            for key, _ in self.sel.select(max(0.0, min(wait, 0.2))):
                self._Event(key.data)
            now = time.monotonic()
            for client in list(self.clients):
                if client.established and client.kind == "slow" and \
                        client.next_send <= now:
                    self._Trickle(client, now)

    def _Event(self, client: _Client) -> None:
        if client not in self.clients:
            return
        sock = client.sock
        if not client.connected:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.failed += 1
                self._Reopen(client)
                return
            client.connected = True
            self.sel.unregister(sock)
            client.sock = sock = self.ctx.wrap_socket(sock, do_handshake_on_connect=False)
            self.sel.register(sock, selectors.EVENT_WRITE, client)
        if not client.established:
            try:
                sock.do_handshake()  # type: ignore[attr-defined]
            except ssl.SSLWantReadError:
                self.sel.modify(sock, selectors.EVENT_READ, client)
                return
            except (ssl.SSLWantWriteError, BlockingIOError):
                self.sel.modify(sock, selectors.EVENT_WRITE, client)
                return
            except OSError:
                self.failed += 1
                self._Reopen(client)
                return
            client.established = True
            client.next_send = time.monotonic()
            self.sel.modify(sock, selectors.EVENT_READ, client)
            return
        # Readable after the handshake: the daemon answered (408) or closed
        try:
            data = sock.recv(65536)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError:
            data = b""
        if not data or data.startswith(b"HTTP/"):
            self._Reopen(client)

    def _Trickle(self, client: _Client, now: float) -> None:
        line = b"GET /2/info HTTP/1.1\r\n" if client.lines == 0 else \
            b"X-Slow-%d: 1\r\n" % client.lines
        try:
            client.sock.send(line)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError:
            self._Reopen(client)
            return
        client.lines += 1
        client.next_send = now + self.interval


def _CrowdMain(port: int, cafile: str, slow: int, idle: int, interval: float,
               pipe: multiprocessing.connection.Connection) -> None:
    crowd = _Crowd(port, cafile, slow, idle, interval)
    crowd.Run(time.monotonic() + SETUP_TIMEOUT, target=slow + idle)
    pipe.send((crowd.Established(), crowd.failed))
    crowd.Run(time.monotonic() + 3600, stop=pipe)
    pipe.send((crowd.Established(), crowd.reopened))


def Measure(port: int, cafile: str, count: int, keep_alive: bool, timeout: float,
            max_seconds: float) -> tuple[list[float], int]:
    """Latencies in ms of up to ``count`` GET /2/info, and the failures."""
    ctx = _Context(cafile)
    latencies: list[float] = []
    errors = 0
    conn = None
    deadline = time.monotonic() + max_seconds
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        start = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx,
                                                   timeout=timeout)
            conn.request("GET", "/2/info",
                         headers={} if keep_alive else {"Connection": "close"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise http.client.HTTPException(f"status {resp.status}")
            latencies.append((time.monotonic() - start) * 1000)
        except (OSError, http.client.HTTPException):
            errors += 1
            if conn is not None:
                conn.close()
            conn = None
            continue
        if not keep_alive or resp.will_close:
            conn.close()
            conn = None
    if conn is not None:
        conn.close()
    return latencies, errors


def _Percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def _Counts(pid: int) -> str:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        threads = next(line.split()[1] for line in fh if line.startswith("Threads:"))
    return f"{threads} threads, {len(os.listdir(f'/proc/{pid}/fd'))} fds"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--idle", type=int, default=200)
    parser.add_argument("--slow-interval", type=float, default=5.0,
                        help="Seconds between the header lines of a slow client")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="Timeout of one request, in seconds")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="Time limit of one measurement")
    options = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="gvb", dir="/tmp"))
    master = daemon = crowd = None
    pipe = None
    results = {}
    try:
        master = Master(base)
        daemon = RapiDaemon(master.root, master.env).Prepare()
        master.start()
        daemon.Start()
        assert daemon.pid is not None
        cafile = str(daemon.cert_file)
        Measure(daemon.port, cafile, 20, False, options.timeout, 10)  # warm up
        print(f"{'clients':<26} {'connection':<12} {'median ms':>9} {'p99 ms':>8}"
              f" {'max ms':>8} {'errors':>6}")

        def _Phase(label: str) -> None:
            for keep_alive in (False, True):
                lat, errs = Measure(daemon.port, cafile, options.requests, keep_alive,
                                    options.timeout, options.max_seconds)
                mode = "keep-alive" if keep_alive else "new per req"
                results[(label, keep_alive)] = (lat, errs)
                if lat:
                    print(f"{label:<26} {mode:<12} {statistics.median(lat):>9.2f}"
                          f" {_Percentile(lat, 99):>8.2f} {max(lat):>8.2f} {errs:>6}",
                          flush=True)
                else:
                    print(f"{label:<26} {mode:<12} {'-':>9} {'-':>8} {'-':>8} {errs:>6}",
                          flush=True)

        _Phase("none")
        print(f"daemon: {_Counts(daemon.pid)}")
        pipe, child_pipe = multiprocessing.Pipe()
        crowd = multiprocessing.Process(
            target=_CrowdMain, args=(daemon.port, cafile, options.slow, options.idle,
                                     options.slow_interval, child_pipe), daemon=True)
        crowd.start()
        if not pipe.poll(SETUP_TIMEOUT + 10):
            raise RuntimeError("the slow and idle clients did not report")
        established, failed = pipe.recv()
        print(f"{established} of {options.slow + options.idle} slow and idle TLS"
              f" connections established ({failed} failed handshakes)")
        label = f"{options.slow} slow + {options.idle} idle"
        _Phase(label)
        print(f"daemon: {_Counts(daemon.pid)}")
        pipe.send("stop")
        if pipe.poll(10):
            established, reopened = pipe.recv()
            print(f"at the end {established} established, {reopened} reopened"
                  " (closed by the daemon)")
    finally:
        if crowd is not None:
            crowd.join(5)
            if crowd.is_alive():
                crowd.terminate()
                crowd.join(5)
        if daemon is not None:
            daemon.Stop()
        if master is not None:
            master.stop()
        shutil.rmtree(base, ignore_errors=True)

    met = True
    for keep_alive in (False, True):
        quiet, _ = results[("none", keep_alive)]
        busy, errs = results[(label, keep_alive)]
        if not quiet or not busy or errs:
            met = False
            continue
        d_median = statistics.median(busy) - statistics.median(quiet)
        d_p99 = _Percentile(busy, 99) - _Percentile(quiet, 99)
        met = met and d_median < TARGET_MS and d_p99 < TARGET_MS
        print(f"change with the crowd ({'keep-alive' if keep_alive else 'new per req'}):"
              f" median {d_median:+.2f} ms, p99 {d_p99:+.2f} ms")
    print(f"target: latency changes by < {TARGET_MS:.0f} ms and no errors ->"
          f" {'met' if met else 'MISSED'} (load average {os.getloadavg()[0]:.1f}"
          f" on {os.cpu_count()} CPUs)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
