"""Tests for ganeti-confd (ganeti.server.confd) as a real process, and for
tools/confd-client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

import confdhelpers as h
from ganeti import constants as C
from ganeti.confd import client

pytestmark = pytest.mark.timeout(120)

ROLE = C.CONFD_REQ_NODE_ROLE_BYNAME
TOOL = os.path.join(h.REPO_ROOT, "tools", "confd-client")


@pytest.fixture
def start(tmp_path):
    started: list[h.ConfdDaemon] = []

    def _Start(name="c1", address="127.0.0.1", data="default", wait=True,
               **kwargs):
        if data == "default":
            data = h.MakeConfigData()
        daemon = h.StartConfd(str(tmp_path), name, address, data, **kwargs)
        started.append(daemon)
        if wait:
            h.WaitReady([daemon])
        return daemon

    yield _Start
    h.StopAll(started)


def _Query(daemon, rtype=ROLE, query="node2.example.com", key=h.HMAC_KEY,
           timeout=2.0):
    return client.QueryOnce(key, [daemon.peer], rtype, query,
                            timeout=timeout)


def test_serves_and_stops_on_sigterm(start):
    daemon = start()
    result = _Query(daemon)
    assert (result.reply.status, result.reply.answer, result.reply.serial) \
        == (C.CONFD_REPL_STATUS_OK, C.CONFD_NODE_ROLE_CANDIDATE, 10)
    pidfile = os.path.join(daemon.root, "var", "run", "ganeti",
                           "ganeti-confd.pid")
    assert int(open(pidfile).read()) == daemon.pid
    logfile = os.path.join(daemon.root, "var", "log", "ganeti",
                           "conf-daemon.log")
    assert "serving on 127.0.0.1" in open(logfile).read()
    assert daemon.Stop() == 0
    assert not os.path.exists(pidfile)


def test_reloads_replaced_config(start):
    daemon = start()
    assert _Query(daemon, query="nodex.example.com").reply.status == \
        C.CONFD_REPL_STATUS_ERROR
    h.WriteConfig(daemon.cfg_file, h.MakeConfigData(
        serial=11, extra_nodes={"nodex.example.com": "192.0.2.77"}))
    reply = h.WaitFor(
        lambda: (r := _Query(daemon, query="nodex.example.com").reply)
        and r.serial == 11 and r, what="the new configuration")
    assert reply.answer == C.CONFD_NODE_ROLE_REGULAR
    # a broken file keeps the last good configuration in use
    with open(daemon.cfg_file, "w") as fd:
        fd.write("{not json")
    h.WaitFor(lambda: "Cannot reload" in daemon.Output(),
              what="the reload error")
    assert _Query(daemon, query="nodex.example.com").reply.serial == 11
    assert daemon.Alive()


def test_picks_up_new_hmac_key(start):
    daemon = start()
    assert _Query(daemon).reply is not None
    new_key = b"a-brand-new-key\n"
    h.WriteHmacKey(daemon.root, new_key)
    h.WaitFor(lambda: _Query(daemon, key=new_key, timeout=0.5).reply,
              what="the new key")
    assert _Query(daemon, timeout=0.5).reply is None  # old key refused


def test_starts_without_config(start):
    daemon = start(data=None)
    reply = _Query(daemon, rtype=C.CONFD_REQ_PING).reply
    assert reply.status == C.CONFD_REPL_STATUS_ERROR
    assert "Cannot read configuration file" in daemon.Output() or \
        "configuration" in reply.answer
    h.WriteConfig(daemon.cfg_file, h.MakeConfigData(serial=3))
    h.WaitFor(lambda: (r := _Query(daemon, rtype=C.CONFD_REQ_PING).reply)
              and r.status == C.CONFD_REPL_STATUS_OK, what="the config")


def test_refuses_to_start_without_key(tmp_path):
    root = str(tmp_path / "c1")
    h.WriteConfig(os.path.join(h.DataDir(root), C.CLUSTER_CONF_FILE_NAME),
                  h.MakeConfigData())
    proc = subprocess.run(
        [sys.executable, h.CONFD_SCRIPT, "-f", "-b", "127.0.0.1", "-p", "0"],
        env=dict(os.environ, GANETI_ROOTDIR=root),
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == C.EXIT_FAILURE
    assert "Cannot start without the HMAC key" in proc.stderr


@pytest.mark.parametrize("args,pattern", [
    (["-b", "not-an-address"], "invalid bind address 'not-an-address'"),
    (["-p", "70000"], "invalid port 70000"),
    (["-p", "x"], "invalid int value"),
])
def test_bad_options(tmp_path, args, pattern):
    proc = subprocess.run([sys.executable, h.CONFD_SCRIPT, "-f", *args],
                          env=dict(os.environ, GANETI_ROOTDIR=str(tmp_path)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert pattern in proc.stderr


def test_port_in_use(start, tmp_path):
    daemon = start()
    root = str(tmp_path / "c2")
    h.WriteHmacKey(root)
    proc = subprocess.run(
        [sys.executable, h.CONFD_SCRIPT, "-f", "-b", "127.0.0.1", "-p",
         str(daemon.port)],
        env=dict(os.environ, GANETI_ROOTDIR=root),
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == C.EXIT_FAILURE
    assert "Cannot listen on 127.0.0.1" in proc.stderr


def test_sigint_also_stops(start):
    daemon = start()
    os.kill(daemon.pid, signal.SIGINT)
    assert daemon.proc.wait(30) == 0


# --- tools/confd-client ---------------------------------------------------------------

def _Tool(*args, key_file=None):
    cmd = [sys.executable, TOOL, *args]
    if key_file:
        cmd += ["-k", key_file]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_tool_prints_answers(start):
    daemon = start()
    key_file = os.path.join(h.DataDir(daemon.root), "hmac.key")
    peer = f"127.0.0.1:{daemon.port}"
    proc = _Tool("-t", "node-role-byname", "-q", "node1.example.com",
                 "--peers", peer, key_file=key_file)
    assert proc.returncode == 0, proc.stderr
    assert f"{peer} serial=10 status=ok answer=0" in proc.stdout
    assert "answered 1/1 (quorum 1)" in proc.stdout
    proc = _Tool("-t", "3", "-q", '{"3": ["0", "2"]}', "--peers", peer,
                 "--json", key_file=key_file)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["best"]["answer"] == \
        ["node1.example.com", "192.0.2.1"]
    proc = _Tool("-t", "node-role-byname", "-q", "nosuch", "--peers", peer,
                 key_file=key_file)
    assert proc.returncode == 1 and "status=error" in proc.stdout


@pytest.mark.parametrize("args,pattern", [
    (["-t", "bogus", "--peers", "127.0.0.1"], "unknown request type 'bogus'"),
    (["-t", "42", "--peers", "127.0.0.1"], "unknown request type 42"),
    (["-t", "ping", "--peers", "nohost:1"], "invalid peer address"),
    (["-t", "ping", "--peers", "127.0.0.1:0"], "invalid port in peer"),
    (["-t", "ping", "-q", "{bad", "--peers", "127.0.0.1"], "not valid JSON"),
])
def test_tool_bad_usage(args, pattern):
    proc = _Tool(*args)
    assert proc.returncode == 2
    assert pattern in proc.stderr
