"""A bounded, seeded fuzz of the four wires of a running virtual cluster.

A two-node virtual cluster (masterd with its luxi sockets, noded on both
nodes, confd on both master candidates, RAPI on the master) gets one
diskless instance and a read-only RAPI user; then each wire gets
``GANETI_FUZZ_ITERATIONS`` cases (default 300; confd, whose cases cost
little, gets ten times as many) drawn from a :class:`random.Random` seeded
with ``GANETI_FUZZ_SEED`` (random when unset; printed always, and every
failure message says how to replay it). The fuzzers live in ``fuzzing/``:

- luxi: valid requests of every method, mutated ones (method names,
  argument counts, shapes and types, versions), JSON junk, deep and huge
  JSON, binary junk, several messages at once, a message sent in pieces,
  one cut short by the end of the stream, one larger than the limit;
- RAPI: every resource of :data:`ganeti.rapi.resources.RESOURCES` with real,
  random and hostile names, random methods, query strings, JSON and
  non-JSON bodies, good, read-only, bad and malformed credentials, odd
  headers, malformed HTTP, plain text and TLS junk; writes always carry
  ``dry-run=1``, so nothing changes (the one resource that ignores dry-run,
  instance reinstall, gets only names that do not exist when the write user
  asks);
- confd: signed requests of every type with random queries, types and
  protocol versions, replays, and requests that must be dropped: unsigned,
  badly signed, stale or future salts, no ``rsalt``, junk, oversized;
- noded: the read-only RPC calls with random and mutated arguments over TLS
  with the cluster's client certificate; calls that change the node only
  in shapes refused before their handler runs (wrong argument count, a body
  that is not a list, an argument that cannot be decoded); unknown calls,
  other methods, malformed HTTP, TLS without a client certificate, plain
  text and junk on the TLS port. No argument names a path outside the
  cluster's directory. Luxi opcodes are dry runs as well.

Oracles: no daemon dies or is replaced (pids unchanged, checked every ten
cases); no HTTP status of 500 or above from RAPI or noded; every answer
decodes (JSON; RAPI errors carry their code; noded answers ``[bool,
payload]``); luxi answers every complete message with success or an
encoded Ganeti error that is not an unhandled Python exception, and keeps
the connection usable (or, after a message cut short or too large, answers
and closes it); confd answers every valid signed request with a reply
signed for its ``rsalt`` and without an internal error, and answers nothing
it must drop; RAPI refuses every write without write credentials; noded
never runs a handler for the refused shapes and never serves a client
without a certificate; no request takes longer than ``REQUEST_BOUND`` (10 s;
25 s for waits a request asks for). At the end every job the fuzz submitted
has finished, ``gnt-cluster verify`` is clean, the configuration's serial
number is unchanged (every write was a dry run) and each daemon's VmRSS is
at most 50 MiB above its value after a warm-up (one request of each kind to
every daemon), or 50% above it if that is more (``RSS_SLACK_*``).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fuzzing import confd, luxi, noded, rapi  # noqa: E402
from fuzzing import gen as fg  # noqa: E402
from fuzzing.core import (  # noqa: E402
    INSTANCE,
    ITERATIONS,
    NODED_PORT,
    READER,
    REPLAY,
    RSS_SLACK_MIB,
    RSS_SLACK_RATIO,
    SEED,
    ClientContext,
    HttpsTarget,
    Run,
    Target,
)
from vcluster import virtual_cluster  # noqa: E402
from ganeti import constants, vcluster  # noqa: E402
from ganeti.luxi import client as luxi_names  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

#: Confd cases cost about a third of a millisecond each
CONFD_FACTOR = 10
#: Seconds the jobs submitted by the fuzz get to finish at the end
JOBS_BOUND = 120.0


def _WarmUp(t: Target) -> None:
    """Use every daemon once, so that the memory baseline includes what
    the first requests load; learn the query fields and the job ids."""
    for path in t.luxi_paths:
        conn = luxi.LuxiConn(path)
        try:
            for what in sorted(constants.QR_VIA_LUXI):
                success, result = conn.Call(luxi_names.REQ_QUERY_FIELDS, [what, None])
                if success:
                    t.fields[what] = [f["name"] for f in result["fields"]]
            success, result = conn.Call(luxi_names.REQ_QUERY_JOBS, [None, ["id"]])
            assert success, result
            t.job_ids = sorted({row[0] for row in result if row is not None})
        finally:
            conn.Close()
    server = HttpsTarget(t.rapi_host, t.rapi_port, ClientContext(t.rapi_ca))
    try:
        for path in ("/2/info", "/2/nodes?bulk=1", "/2/instances?bulk=1", "/2/jobs"):
            answer = server.Request("GET", path, {"Authorization": fg.BasicAuth(*t.admin)},
                                    None)
            assert answer.status == 200, (path, answer)
    finally:
        server.Close()
    for node in t.nodes:
        server = HttpsTarget(node.ip, NODED_PORT, ClientContext(t.noded_ca, t.noded_cert))
        try:
            answer = server.Request("PUT", "/version", {}, b"[]")
            assert answer.status == 200, answer
        finally:
            server.Close()
    result = t.vc.run("gnt-cluster", "verify", "--error-codes", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def target():
    """The fuzzed virtual cluster; prints the seed first."""
    print(f"\nfuzz seed {SEED}, {ITERATIONS} cases per wire ({REPLAY})")
    with virtual_cluster(nodes=2) as vc:
        vc.run("gnt-instance", "add", "-o", "noop+default", "-t", "diskless",
               "-n", vc.names[1], "--no-name-check", "--no-ip-check", INSTANCE)
        vc.run("gnt-cluster", "rapi-user", "add", "--password-stdin", "--read-only",
               READER[0], input=READER[1] + "\n")
        t = Target.FromCluster(vc)
        _WarmUp(t)
        t.pids = t.Daemons()
        assert vcluster.ExpectedDaemons(vc.state()) <= set(t.pids), t.pids
        t.rss = t.Rss()
        t.config_serial = t.ConfigSerial()
        yield t


def test_luxi(target):
    run = Run("luxi", target)
    luxi.LuxiFuzzer(run).Go()
    run.Finish()


def test_rapi(target):
    run = Run("rapi", target)
    rapi.RapiFuzzer(run).Go()
    run.Finish()


def test_confd(target):
    run = Run("confd", target, ITERATIONS * CONFD_FACTOR)
    confd.ConfdFuzzer(run).Go()
    run.Finish()


def test_noded(target):
    run = Run("noded", target)
    noded.NodedFuzzer(run).Go()
    run.Finish()


def _UnfinishedJobs(t: Target) -> list[Any]:
    conn = luxi.LuxiConn(t.luxi_paths[0])
    try:
        success, rows = conn.Call(luxi_names.REQ_QUERY_JOBS,
                                  [None, ["id", "status", "summary"]])
    finally:
        conn.Close()
    assert success, rows
    return [row for row in rows
            if row is not None and row[1] not in constants.JOBS_FINALIZED]


def _WaitJobsDone(t: Target) -> list[Any]:
    """Follow the unfinished jobs until none is left or the bound passes;
    return the ones left."""
    deadline = time.monotonic() + JOBS_BOUND
    client = luxi_names.Client(t.luxi_paths[0], timeouts=(10, 60))
    try:
        while True:
            pending = _UnfinishedJobs(t)
            if not pending or time.monotonic() > deadline:
                return pending
            job_id, status = pending[0][0], pending[0][1]
            client.WaitForJobChangeOnce(job_id, ["status"], [status], None, timeout=5)
    finally:
        client.Close()


def test_cluster_survived(target):
    """Runs last: the cluster is whole, unchanged and not bloated."""
    t = target
    problems = []
    dead = t.DeadDaemons()
    if dead:
        problems.append(f"daemons died or were replaced: {dead}")
    stuck = _WaitJobsDone(t)
    if stuck:
        problems.append(f"jobs still unfinished after {JOBS_BOUND:g}s: {stuck[:10]}")
    result = t.vc.run("gnt-cluster", "verify", "--error-codes", check=False)
    if result.returncode != 0 or "ERROR" in result.stdout:
        problems.append(f"gnt-cluster verify is not clean:\n{result.stdout}{result.stderr}")
    serial = t.ConfigSerial()
    if serial != t.config_serial:
        problems.append(f"the configuration changed (serial {t.config_serial} ->"
                        f" {serial}) although every write was a dry run")
    rss = t.Rss()
    print("VmRSS after the fuzz (KiB, start -> end):")
    for key, start in sorted(t.rss.items()):
        end = rss[key]
        limit = start + max(RSS_SLACK_MIB * 1024, int(start * RSS_SLACK_RATIO))
        print(f"  {key[1]} on {key[0]}: {start} -> {end} (limit {limit})")
        if end > limit:
            problems.append(f"{key[1]} on {key[0]} grew from {start} KiB to {end} KiB"
                            f" (limit {limit} KiB)")
    assert not problems, f"{REPLAY}\n" + "\n".join(problems)
