"""Tests for ganeti-confd (ganeti.server.confd) as a real process, and for
tools/confd-client."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

import confdhelpers as h
from ganeti import constants as C
from ganeti import utils
from ganeti.confd import client, protocol
from ganeti.confd import server as confd_server
from ganeti.confd.protocol import ConfdRequest
from ganeti.server import confd as confd_daemon

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


# Options making a background reload impossible (queries still reload)
NO_BACKGROUND = ["--reload-quiet", "600", "--reload-maxdelay", "600"]


def _LoadedSerials(daemon) -> list[int]:
    """The serial of each configuration the daemon loaded, in order."""
    return [int(re.search(r"\(serial (\d+),", line).group(1))
            for line in h.ReloadLines(daemon)]


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


# --- When the configuration is reloaded ----------------------------------------------

def test_burst_of_replaces_gives_one_reload(start):
    # the shipped QUIET and MAXDELAY: 20 quick replaces fit in a quiet spell
    # (or, on a very slow disk, span one MAXDELAY: two reloads)
    daemon = start()
    burst = [h.MakeConfigData(serial=11 + i) for i in range(20)]
    assert _LoadedSerials(daemon) == [10]
    for data in burst:
        h.WriteConfig(daemon.cfg_file, data)
    h.WaitFor(lambda: 30 in _LoadedSerials(daemon), what="the final reload")
    lines = h.ReloadLines(daemon)[1:]
    assert 1 <= len(lines) <= 2, lines
    assert all("in the background" in line for line in lines)
    reply = _Query(daemon).reply
    assert (reply.status, reply.answer, reply.serial) == \
        (C.CONFD_REPL_STATUS_OK, C.CONFD_NODE_ROLE_CANDIDATE, 30)
    # the query found the final configuration loaded: nothing parsed again
    assert len(h.ReloadLines(daemon)) == 1 + len(lines)


def test_query_after_replace_answers_from_new_config(start):
    daemon = start(extra_args=NO_BACKGROUND)
    assert _Query(daemon, query="nodex.example.com").reply.status == \
        C.CONFD_REPL_STATUS_ERROR
    h.WriteConfig(daemon.cfg_file, h.MakeConfigData(
        serial=11, extra_nodes={"nodex.example.com": "192.0.2.77"}))
    reply = _Query(daemon, query="nodex.example.com").reply
    assert (reply.status, reply.answer, reply.serial) == \
        (C.CONFD_REPL_STATUS_OK, C.CONFD_NODE_ROLE_REGULAR, 11)
    assert _LoadedSerials(daemon) == [10, 11]
    assert "on a query" in h.ReloadLines(daemon)[-1]
    # answered from the loaded snapshot from now on
    assert _Query(daemon).reply.serial == 11
    assert _LoadedSerials(daemon) == [10, 11]


def test_one_replace_gives_one_reload(start):
    daemon = start(extra_args=["--reload-quiet", "0.2"])
    h.WriteConfig(daemon.cfg_file, h.MakeConfigData(serial=11))
    # more events for the same file, e.g. the mode changed after the
    # rename (IN_ATTRIB): the signature is the same, nothing to parse
    os.chmod(daemon.cfg_file, 0o640)
    h.WaitFor(lambda: 11 in _LoadedSerials(daemon), what="the reload")
    # a second replace: its reload comes after any duplicate of the first
    # (one background reloader, in order)
    h.WriteConfig(daemon.cfg_file, h.MakeConfigData(serial=12))
    h.WaitFor(lambda: 12 in _LoadedSerials(daemon), what="the reload")
    assert _LoadedSerials(daemon) == [10, 11, 12]
    assert _Query(daemon).reply.serial == 12
    assert _LoadedSerials(daemon) == [10, 11, 12]


def test_steady_stream_still_reloads_after_maxdelay(start):
    # never quiet long enough: only MAXDELAY can trigger the reload
    daemon = start(extra_args=["--reload-quiet", "600",
                               "--reload-maxdelay", "0.5"])
    serial = 10
    deadline = time.monotonic() + 30
    while len(h.ReloadLines(daemon)) < 2:
        assert time.monotonic() < deadline, "no reload during the stream"
        serial += 1
        h.WriteConfig(daemon.cfg_file, h.MakeConfigData(serial=serial))
    assert "in the background" in h.ReloadLines(daemon)[1]
    assert 10 < _LoadedSerials(daemon)[1] <= serial


def test_background_reloads_keep_to_a_cpu_budget(start):
    # Changes are "quiet" at once, but the budget (a huge factor times the
    # CPU the startup load took) postpones the background reload; a query
    # still gets the new configuration, loaded on demand
    daemon = start(debug=True, extra_args=["--reload-quiet", "0", "--reload-maxdelay", "0",
                                           "--reload-cpu-factor", "1000000"])
    h.WriteConfig(daemon.cfg_file, h.MakeConfigData(serial=11))
    h.WaitFor(lambda: "Background reload in" in daemon.Output(),
              what="the postponed background reload")
    assert _LoadedSerials(daemon) == [10]
    assert _Query(daemon).reply.serial == 11
    assert "on a query" in h.ReloadLines(daemon)[-1]


def test_cpu_budget_delay(tmp_path):
    daemon = confd_daemon.ConfdDaemon(str(tmp_path / "config.data"),
                                      str(tmp_path / "hmac.key"), reload_cpu_factor=50)
    assert daemon.BackgroundReloadDelay() == 0  # nothing loaded yet
    daemon._load_cpu, daemon._load_end = 0.3, time.monotonic()
    assert 14 < daemon.BackgroundReloadDelay() <= 15
    daemon._load_end -= 20
    assert daemon.BackgroundReloadDelay() == 0


def test_broken_config_is_parsed_once(start):
    daemon = start(extra_args=NO_BACKGROUND)
    utils.WriteFile(daemon.cfg_file, data="{not json")
    for _ in range(2):
        reply = _Query(daemon).reply
        assert (reply.status, reply.answer, reply.serial) == \
            (C.CONFD_REPL_STATUS_OK, C.CONFD_NODE_ROLE_CANDIDATE, 10)
    errors = [line for line in daemon.Output().splitlines()
              if "Cannot reload the configuration" in line]
    assert len(errors) == 1, errors
    assert "on a query" in errors[0] and "not valid JSON" in errors[0]
    # once the file changes again it is read again
    h.WriteConfig(daemon.cfg_file, h.MakeConfigData(serial=11))
    assert _Query(daemon).reply.serial == 11
    assert _LoadedSerials(daemon) == [10, 11]


def test_unsigned_datagrams_do_not_reload(start):
    daemon = start(extra_args=NO_BACKGROUND)
    h.WriteConfig(daemon.cfg_file, h.MakeConfigData(serial=11))
    assert _Query(daemon, key=b"not-the-key", timeout=0.3).reply is None
    # the refused query parsed nothing; the next good one does
    assert _LoadedSerials(daemon) == [10]
    assert _Query(daemon).reply.serial == 11
    assert _LoadedSerials(daemon) == [10, 11]


def test_concurrent_loads_parse_each_file_once(tmp_path, monkeypatch):
    cfg_file = str(tmp_path / "config.data")
    h.WriteConfig(cfg_file, h.MakeConfigData(serial=10))
    daemon = confd_daemon.ConfdDaemon(cfg_file, str(tmp_path / "hmac.key"))
    parsed = []
    real_load = confd_server.LoadSnapshot

    def _Load(path):
        parsed.append(path)
        return real_load(path)

    monkeypatch.setattr(confd_server, "LoadSnapshot", _Load)
    assert daemon.LoadConfig()
    assert daemon.processor.snapshot.serial == 10
    h.WriteConfig(cfg_file, h.MakeConfigData(serial=11))
    barrier = threading.Barrier(8)
    results = []

    def _Reload():
        barrier.wait()
        results.append(daemon.ReloadIfChanged("test"))

    threads = [threading.Thread(target=_Reload) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [False] * 7 + [True]
    assert len(parsed) == 2 and daemon.reloads == 2
    assert daemon.processor.snapshot.serial == 11
    # a broken file: one failed parse, the old snapshot stays
    utils.WriteFile(cfg_file, data="{not json")
    assert not daemon.ReloadIfChanged("test")
    assert not daemon.ReloadIfChanged("test")
    assert len(parsed) == 3 and daemon.processor.snapshot.serial == 11
    # a missing file is one more failure, not retried either
    os.unlink(cfg_file)
    assert not daemon.ReloadIfChanged("test")
    assert not daemon.ReloadIfChanged("test")
    assert len(parsed) == 4 and daemon.processor.snapshot.serial == 11


# --- ConfdProcessor's before_answer hook (in process) -----------------------------------

def _Datagram(key=h.HMAC_KEY, rsalt="rs-1", now=None):
    req = ConfdRequest(type=C.CONFD_REQ_PING, rsalt=rsalt)
    return protocol.PackRequest(req, key, now=now)


def _Processor(serial=10, **kwargs):
    return confd_server.ConfdProcessor(
        confd_server.ConfigSnapshot(h.MakeConfigData(serial=serial)),
        h.HMAC_KEY, **kwargs)


def test_hook_runs_before_the_answer():
    new = confd_server.ConfigSnapshot(h.MakeConfigData(serial=11))
    calls = []

    def _Hook():
        calls.append(proc.snapshot.serial)
        proc.SetSnapshot(new)

    proc = _Processor(before_answer=_Hook)
    reply, _ = protocol.UnpackReply(proc.HandleDatagram(_Datagram()),
                                    h.HMAC_KEY)
    assert calls == [10]
    assert reply.serial == 11  # answered from what the hook installed
    proc.HandleDatagram(_Datagram())
    assert calls == [10, 11]  # once per answered datagram


@pytest.mark.parametrize("payload,reason", [
    (_Datagram(key=b"wrong key"), "signature"),
    (b"xxxx" + _Datagram()[4:], "magic"),
    (b"plj0{not json", "format"),
    (_Datagram(now=time.time() - 3600), "time"),
    (_Datagram(rsalt=""), "rsalt"),
    (b"plj0" + b" " * C.MAX_UDP_DATA_SIZE, "size"),
])
def test_hook_not_run_for_dropped_datagrams(payload, reason):
    calls = []
    proc = _Processor(before_answer=lambda: calls.append(1))
    assert proc.HandleDatagram(payload) is None
    assert proc.stats[reason] == 1
    assert calls == []


def test_hook_not_run_without_key():
    calls = []
    proc = confd_server.ConfdProcessor(before_answer=lambda: calls.append(1))
    assert proc.HandleDatagram(_Datagram()) is None
    assert proc.stats["nokey"] == 1 and calls == []


def test_hook_failure_answers_from_current_snapshot(caplog):
    def _Hook():
        raise RuntimeError("disk on fire")

    proc = _Processor(before_answer=_Hook)
    with caplog.at_level(logging.ERROR, logger="ganeti.confd"):
        answer = proc.HandleDatagram(_Datagram(), peer=("192.0.2.9", 1))
    reply, _ = protocol.UnpackReply(answer, h.HMAC_KEY)
    assert (reply.status, reply.serial) == (C.CONFD_REPL_STATUS_OK, 10)
    assert "disk on fire" in caplog.text
    assert proc.stats["answered"] == 1


def test_daemon_installs_its_hook(tmp_path):
    proc = confd_server.ConfdProcessor()
    assert proc.before_answer is None
    daemon = confd_daemon.ConfdDaemon(str(tmp_path / "config.data"),
                                      str(tmp_path / "hmac.key"), proc)
    assert proc.before_answer is not None
    assert daemon.processor is proc


@pytest.mark.parametrize("value", ["-1", "x", "inf", "nan"])
def test_bad_reload_delays(tmp_path, value):
    proc = subprocess.run([sys.executable, h.CONFD_SCRIPT, "-f",
                           "--reload-quiet", value],
                          env=dict(os.environ, GANETI_ROOTDIR=str(tmp_path)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert f"invalid number of seconds '{value}'" in proc.stderr


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
