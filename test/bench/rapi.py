#!/usr/bin/env python3
"""Benchmark ganeti-rapi: requests per second.

Starts a real ganeti-masterd (the integration fixture's one-node cluster,
with ``--instances`` diskless instances written into its configuration
before it starts) and a real ganeti-rapi on 127.0.0.1, then measures
``GET /2/info`` and ``GET /2/instances?bulk=1`` with 1 and 8 concurrent
clients (separate processes, so the clients' GIL is not the limit), each
with a new TLS connection per request (as Ganeti's pycurl client does) and
with keep-alive, and each with two clients: pycurl (Ganeti's client
library) and Python's http.client (which costs about as much CPU per
request as the server does; pycurl builds a TLS context and reads the CA
file for every new handle, which costs more than the server's side of the
handshake). Prints one line per case; the target is at least 300
``GET /2/info`` per second with a new connection per request and one
client (the better of the two client libraries).

Run as ``.venv/bin/python test/bench/rapi.py [--instances 1000]
[--seconds 5] [--paths /2/info,/2/instances?bulk=1] [--key-type rsa]``.
Every daemon is stopped by PID at the end. Besides the rates it prints
the CPU milliseconds per request of the RAPI and master daemons, which
compare better than rates on a busy machine.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import multiprocessing
import os
import ssl
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))

from conftest import Master  # noqa: E402
import privsep  # noqa: E402
from rapidaemon import RapiDaemon  # noqa: E402

from ganeti import constants, objects, runtime  # noqa: E402
from ganeti.config import writer  # noqa: E402
from ganeti.utils import x509  # noqa: E402

TARGET_INFO_NEW_CONN = 300


def AddInstances(cfg_file: Path, count: int) -> None:
    """Write ``count`` diskless instances on the master into the config."""
    cfg = writer.ConfigWriter(str(cfg_file), offline=True, accept_foreign=True)
    node_uuid = cfg.GetMasterNode()
    for idx in range(count):
        inst = objects.Instance(
            name=f"inst{idx:04d}.example.com", primary_node=node_uuid,
            os="debootstrap", hypervisor=constants.HT_FAKE, hvparams={},
            beparams={}, osparams={}, osparams_private={}, nics=[], disks=[],
            admin_state=constants.ADMINST_DOWN, network_port=None)
        cfg.AddInstance(inst, "bench")


def _CurlWorker(args: tuple[int, str, str, bool, float]) -> tuple[int, int]:
    """Requests with pycurl: a new handle (connection) per request, as
    Ganeti's client does, or one handle kept alive."""
    import io

    import pycurl
    port, path, cafile, keep_alive, seconds = args
    url = f"https://127.0.0.1:{port}{path}"
    done = errors = 0
    curl = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if curl is None:
            curl = pycurl.Curl()
            curl.setopt(pycurl.URL, url)
            curl.setopt(pycurl.CAINFO, cafile)
            curl.setopt(pycurl.SSL_VERIFYHOST, 0)
            curl.setopt(pycurl.NOSIGNAL, 1)
        buf = io.BytesIO()
        curl.setopt(pycurl.WRITEFUNCTION, buf.write)
        try:
            curl.perform()
            if curl.getinfo(pycurl.RESPONSE_CODE) != 200:
                errors += 1
        except pycurl.error:
            errors += 1
        done += 1
        if not keep_alive:
            curl.close()
            curl = None
    if curl is not None:
        curl.close()
    return done, errors


def _Worker(args: tuple[int, str, str, bool, float]) -> tuple[int, int]:
    """Requests with http.client (pure Python: the client costs as much CPU
    as the server)."""
    port, path, cafile, keep_alive, seconds = args
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    done = errors = 0
    conn = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if conn is None:
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx,
                                               timeout=60)
        headers = {} if keep_alive else {"Connection": "close"}
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                errors += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = None
            continue
        done += 1
        if not keep_alive or resp.will_close:
            conn.close()
            conn = None
    if conn is not None:
        conn.close()
    return done, errors


def CpuSeconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def Measure(daemon: RapiDaemon, path: str, clients: int, keep_alive: bool,
            seconds: float, worker=_CurlWorker,
            master_pid: int | None = None) -> tuple[float, int, float, float]:
    """Requests per second, errors, and the CPU milliseconds per request of
    the RAPI daemon and of the master daemon (both independent of how busy
    the machine is, unlike the rate)."""
    assert daemon.pid is not None
    args = [(daemon.port, path, str(daemon.cert_file), keep_alive, seconds)] * clients
    with multiprocessing.Pool(clients) as pool:
        cpu_rapi = CpuSeconds(daemon.pid)
        cpu_master = CpuSeconds(master_pid) if master_pid else 0.0
        start = time.monotonic()
        results = pool.map(worker, args)
        elapsed = time.monotonic() - start
        cpu_rapi = CpuSeconds(daemon.pid) - cpu_rapi
        cpu_master = (CpuSeconds(master_pid) - cpu_master) if master_pid else 0.0
    done = sum(r[0] for r in results)
    per_req = 1000.0 / max(done, 1)
    return done / elapsed, sum(r[1] for r in results), cpu_rapi * per_req, \
        cpu_master * per_req


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--key-type", choices=sorted(x509.KEY_TYPES), default=None,
                        help="Key type of the RAPI certificate (default: what"
                             " crypto_setup generates)")
    parser.add_argument("--paths", default="/2/info,/2/instances?bulk=1",
                        help="Comma-separated resources to measure")
    parser.add_argument("--privsep", action="store_true",
                        help="Run the daemons as their own unprivileged users (as"
                             " root; users are created for the run)")
    options = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="gvb", dir="/tmp"))
    base.chmod(0o755)
    stack = contextlib.ExitStack()
    users = stack.enter_context(privsep.DaemonUsers(base)) if options.privsep else None
    master = Master(base, privsep=users)
    start = time.monotonic()
    AddInstances(master.cfg_file, options.instances)
    print(f"config with {options.instances} instances written in"
          f" {time.monotonic() - start:.1f} s")
    daemon = RapiDaemon(master.root, master.env,
                        python=users.python if users is not None else sys.executable)
    if users is not None:
        # The ready file is written after the switch
        ready_dir = base / "ready"
        ready_dir.mkdir()
        ents = runtime.GetEnts(users.env)
        os.chown(ready_dir, ents.rapi_uid, ents.rapi_gid)
        daemon.ready_file = ready_dir / "rapi.ready"
        print(f"privilege separation: RAPI runs as {users.names.rapi_user},"
              f" masterd as {users.names.masterd_user}")
    if options.key_type:
        # Compare key types on the same code: a certificate of the given type
        # instead of the one crypto_setup makes
        daemon.cert_file.parent.mkdir(parents=True, exist_ok=True)
        x509.GenerateSelfSignedSslCert(str(daemon.cert_file), 1,
                                       mode=constants.RAPI_CERT_MODE,
                                       key_type=options.key_type)
    daemon.Prepare()
    try:
        # (the fixture's master writes its stderr to a file, so the
        # warnings of failing live-field RPCs cannot block it)
        master.start()
        daemon.Start()
        # Check the instance list before measuring it
        probe = daemon.Client(user=None)
        try:
            count = len(probe.GetInstances(bulk=True))
            print(f"GET /2/instances?bulk=1 lists {count} instances")
        except Exception as err:  # pylint: disable=broad-except
            print(f"GET /2/instances?bulk=1 fails ({err}); measuring the error"
                  " answer")
        probe.Close()
        print(f"{'resource':<22} {'client':<7} {'clients':>7} {'connection':<12}"
              f" {'req/s':>9} {'errors':>6} {'rapi ms':>8} {'master ms':>9}"
              "  (CPU per request)")
        best = 0.0
        for path in options.paths.split(","):
            for clients in (1, 8):
                for keep_alive in (False, True):
                    for cname, worker in (("pycurl", _CurlWorker),
                                          ("python", _Worker)):
                        rate, errors, cpu_rapi, cpu_master = Measure(
                            daemon, path, clients, keep_alive, options.seconds,
                            worker, master.pid)
                        mode = "keep-alive" if keep_alive else "new per req"
                        print(f"{path:<22} {cname:<7} {clients:>7} {mode:<12}"
                              f" {rate:>9.1f} {errors:>6} {cpu_rapi:>8.2f}"
                              f" {cpu_master:>9.2f}", flush=True)
                        if path == "/2/info" and clients == 1 and not keep_alive:
                            best = max(best, rate)
        failed = best < TARGET_INFO_NEW_CONN
        print(f"target: >= {TARGET_INFO_NEW_CONN} GET /2/info per second, one client,"
              f" new connection per request: {best:.0f} ->"
              f" {'MISSED' if failed else 'met'} (load average"
              f" {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    finally:
        daemon.Stop()
        master.stop()
        stack.close()
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
