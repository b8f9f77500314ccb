"""Parallel RPC to many real node daemons on this machine."""

from __future__ import annotations

import os
import threading
import time

import pytest

import nodedhelpers
from ganeti import constants
from ganeti.rpc.encoding import PerNode
from ganeti.rpc.node import NodeEndpoint, RpcRunner, StaticResolver


def _Wait(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.mark.slow
def test_parallel_calls_to_50_daemons(start_noded, cluster_crypto):
    daemons = start_noded(50, subnet=91)
    runner = nodedhelpers.MakeRunner(cluster_crypto, daemons)
    names = [d.name for d in daemons]
    start = time.monotonic()
    results = runner.call_version(names)
    elapsed = time.monotonic() - start
    assert list(results) == names
    for name, res in results.items():
        assert res.fail_msg is None, (name, res.fail_msg)
        assert res.payload == constants.PROTOCOL_VERSION
        assert res.node == name
    # Parallel, not one after the other: far less than 50 sequential calls
    assert elapsed < 5.0
    # Each daemon answered with its own data
    verify = runner.call_node_verify(names, {constants.NV_HOSTNAME: None}, "cluster",
                                     {}, {}, {})
    assert {n: r.payload[constants.NV_HOSTNAME] for n, r in verify.items()} == \
        {n: n for n in names}


def test_hanging_daemon_does_not_delay_others(start_noded, cluster_crypto):
    daemons = start_noded(10, subnet=92)
    runner = nodedhelpers.MakeRunner(cluster_crypto, daemons)
    names = [d.name for d in daemons]
    hanging = names[3]
    # One node sleeps far past the call's timeout, the others answer at once
    durations = PerNode({name: (60 if name == hanging else 0) for name in names})
    start = time.monotonic()
    results = runner.call_test_delay(names, durations, read_timeout=2.0)
    elapsed = time.monotonic() - start
    assert elapsed < 4.0, f"call took {elapsed:.1f}s"
    assert "Timeout" in results[hanging].fail_msg
    for name in names:
        if name != hanging:
            assert results[name].fail_msg is None, (name, results[name].fail_msg)


def test_per_node_timeouts_follow_the_arguments(start_noded, cluster_crypto):
    daemons = start_noded(3, subnet=93)
    runner = nodedhelpers.MakeRunner(cluster_crypto, daemons)
    names = [d.name for d in daemons]
    # test_delay's timeout is its duration + 5 s: everyone answers in time
    results = runner.call_test_delay(names, PerNode(dict(zip(names, [0.5, 0, 1.0]))))
    assert all(res.fail_msg is None for res in results.values())


def test_daemon_killed_mid_call(start_noded, cluster_crypto):
    daemons = start_noded(5, subnet=94)
    runner = nodedhelpers.MakeRunner(cluster_crypto, daemons)
    names = [d.name for d in daemons]
    victim = daemons[2]
    results: dict = {}
    thread = threading.Thread(
        target=lambda: results.update(runner.call_test_delay(names, 1.5)))
    start = time.monotonic()
    thread.start()
    try:
        _Wait(lambda: victim.Sleepers(), what="the victim's request")
        victim.KillGroup()
    finally:
        thread.join(30)
    elapsed = time.monotonic() - start
    assert elapsed < 6.0
    # Depending on how far the request got: reset during the TLS handshake,
    # or closed without an answer; never a timeout
    msg = results[victim.name].fail_msg
    assert msg and f"node daemon at {victim.address}:{victim.port}" in msg
    assert "Timeout" not in msg
    for name in names:
        if name != victim.name:
            assert results[name].fail_msg is None, (name, results[name].fail_msg)
    # Afterwards the dead node refuses connections; the others still answer
    after = runner.call_version(names)
    assert "Connection to node daemon" in after[victim.name].fail_msg
    assert all(after[n].fail_msg is None for n in names if n != victim.name)


def _Log(daemon) -> str:
    path = os.path.join(daemon.root, "var", "log", "ganeti", "node-daemon.log")
    with open(path, encoding="utf-8") as fd:
        return fd.read()


def test_offline_refused_and_live_nodes_together(start_noded, cluster_crypto):
    live, offline = start_noded(2, subnet=95, extra_args=["-d"])
    endpoints = {d.name: d.endpoint for d in (live, offline)}
    # A node whose daemon is not running: connection refused
    endpoints["dead.example.com"] = NodeEndpoint("dead.example.com", "127.0.95.200", 1)
    runner = RpcRunner(StaticResolver(endpoints, offline=[offline.name]),
                       ssl_config=cluster_crypto.ssl_config)
    results = runner.call_node_info(list(endpoints), [], [[constants.HT_FAKE, {}]])
    assert results[live.name].fail_msg is None
    assert results[live.name].payload[2][0]["memory_total"] > 0
    assert results[offline.name].offline
    assert results[offline.name].fail_msg == "Node is marked offline"
    assert "Connection to node daemon at 127.0.95.200:1 failed" in \
        results["dead.example.com"].fail_msg
    # The offline node's daemon never saw the request
    assert "PUT /node_info" in _Log(live)
    assert "/node_info" not in _Log(offline)
    # version accepts offline nodes (to re-add them), as in Ganeti
    assert runner.call_version([offline.name])[offline.name].fail_msg is None
