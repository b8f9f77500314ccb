"""backend.impexp: the import/export RPC handlers, in-process on a virtual
node root, with real daemons (socat, TLS on 127.0.0.1).

Every daemon started is cleaned up (stopped by its pid) at the end; waits
poll the status with a deadline.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

import nodedhelpers
from ganeti import constants, objects, pathutils
from ganeti.backend import RPCFail
from ganeti.backend import impexp
from ganeti.backend import storage as bstor
from ganeti.impexpd import pump
from ganeti.rpc import defs
from ganeti.rpc.dispatch import ResolveHandler
from ganeti.utils import x509

DEADLINE = 30.0
FSD = "/srv/ganeti/file-storage"
EXPORTS = "/srv/ganeti/export"
INSTANCE = {"name": "inst1.example.com"}
MIB = 1024 * 1024

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="needs socat")


@pytest.fixture
def node(node_root):
    """A node with its certificate and file storage; daemons cleaned up."""
    x509.GenerateSelfSignedSslCert(pathutils.NODED_CERT_FILE, 1)
    os.makedirs(f"{node_root}{FSD}")
    started: list[str] = []
    real_start = impexp._StartDaemon

    def _Track(*args, **kwargs):
        name = real_start(*args, **kwargs)
        started.append(name)
        return name

    impexp._StartDaemon = _Track
    try:
        yield node_root
    finally:
        impexp._StartDaemon = real_start
        for name in started:
            impexp.Cleanup(name)


def _Opts(**kwargs) -> dict:
    values = {"magic": "magic-12345", "listen_address": "127.0.0.1",
              "connect_timeout": 20}
    values.update(kwargs)
    return objects.ImportExportOptions(**values).ToDict()


def _Status(name: str) -> dict | None:
    return impexp.GetStatus([name])[0]


def _Wait(name: str, predicate, what: str) -> dict:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        current = _Status(name)
        if current is not None and predicate(current):
            return current
        time.sleep(0.02)
    raise AssertionError(f"{what}: {_Status(name)}")


def _WaitEnd(name: str) -> dict:
    return _Wait(name, lambda s: s.get("exit_status") is not None, f"end of {name}")


def _Transfer(src_io, dest_io, **opts) -> tuple[dict, dict]:
    imp = impexp.StartImport(_Opts(**opts), INSTANCE, "disk/0", dest_io)
    port = _Status(imp)["listen_port"]
    assert port
    exp = impexp.StartExport(_Opts(**opts), "127.0.0.1", port, INSTANCE, "disk/0", src_io)
    return _WaitEnd(exp), _WaitEnd(imp)


def test_rpc_table():
    for call in ("import_start", "export_start", "impexp_status", "impexp_abort",
                 "impexp_cleanup"):
        assert defs.CALLS[call].single
        ResolveHandler(defs.CALLS[call].handler)
    assert defs.CALLS["import_start"].arg_names == ["opts", "instance", "component", "ieio"]
    assert defs.CALLS["export_start"].arg_names == \
        ["opts", "host", "port", "instance", "component", "ieio"]


def test_file_transfer_status_and_cleanup(node):
    data = os.urandom(2 * MIB + 3)
    os.makedirs(f"{node}{EXPORTS}/inst1")
    with open(f"{node}{EXPORTS}/inst1/disk0", "wb") as fd:
        fd.write(data)
    imp = impexp.StartImport(_Opts(compress="gzip"), INSTANCE, "disk/0",
                             (constants.IEIO_FILE, [f"{EXPORTS}/new/disk0"]))
    assert imp.startswith("import-inst1.example.com-disk0-")
    directory = os.path.join(pathutils.IMPORT_EXPORT_DIR, imp)
    assert sorted(os.listdir(directory)) == ["daemon.log", "pid", "status"]
    listening = _Status(imp)
    assert listening["listen_port"] and "exit_status" not in listening
    exp = impexp.StartExport(_Opts(compress="gzip"), "127.0.0.1", listening["listen_port"],
                             INSTANCE, "disk/0", (constants.IEIO_FILE,
                                                  [f"{EXPORTS}/inst1/disk0"]))
    assert exp.startswith("export-inst1.example.com-disk0-")
    exp_status, imp_status = _WaitEnd(exp), _WaitEnd(imp)
    assert exp_status["exit_status"] == 0 and imp_status["exit_status"] == 0, \
        (exp_status, imp_status)
    assert exp_status["progress_percent"] == 100 and exp_status["progress_mbytes"] == 2.0
    with open(f"{node}{EXPORTS}/new/disk0", "rb") as fd:
        assert fd.read() == data
    for name in (imp, exp):
        objects.ImportExportStatus.FromDict(_Status(name))
        impexp.Cleanup(name)
        assert not os.path.exists(os.path.join(pathutils.IMPORT_EXPORT_DIR, name))
        impexp.Cleanup(name)  # again: nothing to do
    assert impexp.GetStatus([imp, exp]) == [None, None]


def _FileDisk(name: str, size: int = 2) -> dict:
    disk = objects.Disk(dev_type=constants.DT_FILE, size=size, mode=constants.DISK_RDWR,
                        logical_id=(constants.FD_LOOP, f"{FSD}/{name}/disk0"),
                        uuid=f"{name}-disk0", iv_name="disk/0", params={}, children=[])
    return disk.ToDict()


def test_raw_disk_transfer(node):
    src, dst = _FileDisk("inst1"), _FileDisk("inst2")
    for disk in (src, dst):
        bstor.BlockdevCreate(disk, 2, "x", True, "", False)
    data = os.urandom(2 * MIB)
    with open(f"{node}{FSD}/inst1/disk0", "r+b") as fd:
        fd.write(data)
    exp_status, imp_status = _Transfer((constants.IEIO_RAW_DISK, [src]),
                                       (constants.IEIO_RAW_DISK, [dst]))
    assert (exp_status["exit_status"], imp_status["exit_status"]) == (0, 0)
    with open(f"{node}{FSD}/inst2/disk0", "rb") as fd:
        assert fd.read() == data


def test_own_key_and_ca(node):
    key_pem, cert_pem = x509.GenerateSelfSignedX509Cert("transfer.example.com", 3600, 5)
    key_dir = os.path.join(pathutils.CRYPTO_KEYS_DIR, "x509-key1")
    os.makedirs(key_dir)
    for name, pem in (("key", key_pem), ("cert", cert_pem)):
        with open(os.path.join(key_dir, name), "wb") as fd:
            fd.write(pem)
    os.makedirs(f"{node}{EXPORTS}/inst1")
    with open(f"{node}{EXPORTS}/inst1/disk0", "wb") as fd:
        fd.write(b"data" * 1000)
    exp_status, imp_status = _Transfer(
        (constants.IEIO_FILE, [f"{EXPORTS}/inst1/disk0"]),
        (constants.IEIO_FILE, [f"{EXPORTS}/inst1/copy"]),
        key_name="x509-key1", ca_pem=cert_pem.decode("ascii"))
    assert (exp_status["exit_status"], imp_status["exit_status"]) == (0, 0), \
        (exp_status, imp_status)
    with open(f"{node}{EXPORTS}/inst1/copy", "rb") as fd:
        assert fd.read() == b"data" * 1000


def test_listen_address_from_ssconf(node):
    io = (constants.IEIO_FILE, [f"{EXPORTS}/x"])
    with pytest.raises(RPCFail, match="node list cannot be read"):
        impexp.StartImport(_Opts(listen_address=None), INSTANCE, None, io)
    with open(os.path.join(pathutils.SSCONF_DIR, "ssconf_node_secondary_ips"), "w",
              encoding="ascii") as fd:
        fd.write("other.example.com 127.0.0.9\nnode1.example.com 127.0.0.1\n")
    name = impexp.StartImport(_Opts(listen_address=None), INSTANCE, None, io)
    assert name.startswith("import-inst1.example.com-")
    log = os.path.join(pathutils.IMPORT_EXPORT_DIR, name, "daemon.log")
    with open(log, encoding="utf-8") as fd:
        assert "Listening on 127.0.0.1 port" in fd.read()


def test_abort_and_cleanup_stop_everything(node):
    io = (constants.IEIO_FILE, [f"{EXPORTS}/x"])
    name = impexp.StartImport(_Opts(), INSTANCE, "disk/0", io)
    directory = os.path.join(pathutils.IMPORT_EXPORT_DIR, name)
    pid = impexp._IsRunning(directory)
    children = [member for member in impexp.SessionMembers(pid) if member != pid]
    assert pid and len(children) == 1  # socat
    impexp.Abort(name)
    final = _WaitEnd(name)
    assert (final["exit_status"], final["error_message"]) == (1, "aborted")
    assert all(not _Alive(p) for p in [*children])
    impexp.Cleanup(name)
    assert not os.path.exists(directory) and not _Alive(pid)
    with pytest.raises(RPCFail, match="not found"):
        impexp.Abort(name)


def test_cleanup_of_a_stuck_daemon(node, monkeypatch):
    """A daemon that does not react to SIGTERM is killed; cleanup removes
    what it left (its socat) by session."""
    monkeypatch.setattr(impexp, "KILL_TIMEOUT", 0.5)
    name = impexp.StartImport(_Opts(), INSTANCE, "disk/0",
                              (constants.IEIO_FILE, [f"{EXPORTS}/x"]))
    directory = os.path.join(pathutils.IMPORT_EXPORT_DIR, name)
    pid = impexp._IsRunning(directory)
    children = [member for member in impexp.SessionMembers(pid) if member != pid]
    assert children
    # Stop it so that it cannot react, then look as the master would
    os.kill(pid, signal.SIGSTOP)
    try:
        impexp.Cleanup(name)
    finally:
        for member in [pid, *children]:
            try:
                os.kill(member, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert not os.path.exists(directory)
    assert not any(_Alive(p) for p in [pid, *children])


def test_killed_daemon_status_and_cleanup(node):
    """A daemon killed by SIGKILL reports no result: the status says so, and
    cleanup finds what it left by its session."""
    name = impexp.StartImport(_Opts(), INSTANCE, "disk/0",
                              (constants.IEIO_FILE, [f"{EXPORTS}/x"]))
    directory = os.path.join(pathutils.IMPORT_EXPORT_DIR, name)
    pid = impexp._IsRunning(directory)
    children = [member for member in impexp.SessionMembers(pid) if member != pid]
    try:
        os.kill(pid, signal.SIGKILL)
        final = _Wait(name, lambda s: s.get("exit_status") is not None, "dead daemon")
        assert final["exit_status"] == -1
        assert "ended without reporting" in final["error_message"]
        assert all(_Alive(p) for p in children)
        impexp.Cleanup(name)
        assert not any(_Alive(p) for p in children)
    finally:
        for member in children:
            try:
                os.kill(member, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_start_failure_is_reported_and_cleaned(node):
    io = (constants.IEIO_FILE, [f"{EXPORTS}/x"])
    with pytest.raises(RPCFail, match=r"Cannot start the import of inst1.example.com-disk0:"
                       r".*bind"):
        impexp.StartImport(_Opts(listen_address="192.0.2.1"), INSTANCE, "disk/0", io)
    assert os.listdir(pathutils.IMPORT_EXPORT_DIR) == []


@pytest.mark.parametrize("opts, ieio, message", [
    ({}, (constants.IEIO_SCRIPT, [{}]), r"takes \[disk, index\]"),
    ({}, (constants.IEIO_SCRIPT, [_FileDisk("missing"), 0]), "not found"),
    ({}, ("tape", []), "Unknown import/export I/O type"),
    ({}, (constants.IEIO_FILE, ["/etc/passwd"]), "not below the export directory"),
    ({}, (constants.IEIO_FILE, [f"{EXPORTS}/../x"]), "normalised absolute path"),
    ({}, (constants.IEIO_RAW_DISK, [_FileDisk("missing")]), "not found"),
    ({"compress": "rm"}, (constants.IEIO_FILE, [f"{EXPORTS}/x"]), "not supported on"),
    ({"magic": "x y"}, (constants.IEIO_FILE, [f"{EXPORTS}/x"]), "Invalid magic"),
    ({"key_name": "nokey"}, (constants.IEIO_FILE, [f"{EXPORTS}/x"]), "nokey' not found"),
    ({"ca_pem": "junk"}, (constants.IEIO_FILE, [f"{EXPORTS}/x"]), "Invalid CA"),
])
def test_bad_input(node, opts, ieio, message):
    with pytest.raises(RPCFail, match=message):
        impexp.StartImport(_Opts(**opts), INSTANCE, "disk/0", ieio)


def test_bad_names_and_targets(node):
    with pytest.raises(RPCFail, match="Invalid import/export daemon name"):
        impexp.GetStatus(["../etc"])
    with pytest.raises(RPCFail, match="Invalid import/export daemon name"):
        impexp.Cleanup("status")
    assert impexp.GetStatus(["import-nobody-x"]) == [None]
    io = (constants.IEIO_FILE, [f"{EXPORTS}/x"])
    with pytest.raises(RPCFail, match="Invalid port"):
        impexp.StartExport(_Opts(), "127.0.0.1", 0, INSTANCE, "d", io)
    with pytest.raises(RPCFail, match="Invalid import/export options"):
        impexp.StartImport({"bogus": 1}, INSTANCE, "d", io)


def test_early_end_constant_is_the_daemons():
    # The message the master sees for an interrupted stream
    assert "end mark" in pump.EARLY_END


def _Ok(result):
    assert result.fail_msg is None, result.fail_msg
    return result.payload


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_transfer_between_node_daemons(start_noded, cluster_crypto):
    """Over RPC between two real node daemons sharing the cluster certificate:
    the daemons outlive the node daemon's connection processes."""
    src, dst = start_noded(2, subnet=97)
    runner = nodedhelpers.MakeRunner(cluster_crypto, [src, dst])
    data = os.urandom(MIB + 11)
    os.makedirs(f"{src.root}{EXPORTS}/inst1")
    with open(f"{src.root}{EXPORTS}/inst1/disk0", "wb") as fd:
        fd.write(data)
    opts = objects.ImportExportOptions(magic="magic-over-rpc", compress="gzip-fast",
                                       listen_address=dst.address, connect_timeout=20)
    names = []
    try:
        imp = _Ok(runner.call_import_start(dst.name, opts, INSTANCE, "disk/0", (
            constants.IEIO_FILE, [f"{EXPORTS}/inst1/disk0"])))
        names.append((dst, imp))
        port = _Ok(runner.call_impexp_status(dst.name, [imp]))[0]["listen_port"]
        exp = _Ok(runner.call_export_start(src.name, opts, dst.address, port, INSTANCE,
                                           "disk/0", (constants.IEIO_FILE,
                                                      [f"{EXPORTS}/inst1/disk0"])))
        names.append((src, exp))
        deadline = time.monotonic() + DEADLINE
        while True:
            statuses = [_Ok(runner.call_impexp_status(node.name, [name]))[0]
                        for node, name in names]
            if all(s.get("exit_status") is not None for s in statuses) or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert [s.get("exit_status") for s in statuses] == [0, 0], statuses
        with open(f"{dst.root}{EXPORTS}/inst1/disk0", "rb") as fd:
            assert fd.read() == data
    finally:
        for node, name in names:
            _Ok(runner.call_impexp_cleanup(node.name, name))
    for node, name in names:
        assert not os.path.exists(f"{node.root}/var/run/ganeti/import-export/{name}")


def _Alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fd:
            return fd.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
