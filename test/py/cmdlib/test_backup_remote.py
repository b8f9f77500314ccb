"""Moves between clusters, master side: the signed messages (cmdlib/rie.py,
utils/x509.py signatures), the source's remote export (backup_remote.py)
and the destination's remote import (instance_remote_import.py, through
mcpu on a one-node configuration with a fake RPC runner simulating the
import/export daemons)."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers as ih  # noqa: E402

from ganeti import constants, errors, objects, pathutils  # noqa: E402
from ganeti.cmdlib import backup_remote, impexp, rie  # noqa: E402
from ganeti.utils import x509  # noqa: E402

CDS = "0123456789abcdef" * 4
OTHER = "fedcba9876543210" * 4


@pytest.fixture
def cds_file(tmp_path, monkeypatch):
    path = tmp_path / "cluster-domain-secret"
    path.write_text(CDS + "\n")
    monkeypatch.setattr(pathutils, "CLUSTER_DOMAIN_SECRET_FILE", str(path))
    monkeypatch.setattr(impexp, "POLL_INTERVAL", 0)
    return path


@pytest.fixture(scope="module")
def cert_pem():
    return x509.GenerateSelfSignedX509Cert("node1.example.com", 3600, 1)[1].decode()


# --- signed certificates -------------------------------------------------------------

def test_signed_certificate_round_trip(cert_pem):
    signed = x509.SignX509Certificate(cert_pem, CDS, "abc123")
    assert signed.startswith("X-Ganeti-Signature: abc123/")
    assert signed.endswith(cert_pem)
    cert, salt = x509.LoadSignedX509Certificate(signed, CDS)
    assert salt == "abc123" and x509.GetCommonName(cert) == "node1.example.com"
    # The check is the one of the CA given to the opcodes
    assert rie.CheckSignedCertificate(CDS, signed, "CA") == cert_pem


def test_signed_certificate_refused(cert_pem):
    signed = x509.SignX509Certificate(cert_pem, CDS, "abc123")
    with pytest.raises(errors.GenericError, match="signature is invalid"):
        x509.LoadSignedX509Certificate(signed, OTHER)
    with pytest.raises(errors.GenericError, match="signature is missing"):
        x509.LoadSignedX509Certificate(cert_pem, CDS)
    # Another certificate under the same signature header
    other = x509.GenerateSelfSignedX509Cert("evil.example.com", 3600, 1)[1].decode()
    header = signed.split("\n\n", 1)[0]
    with pytest.raises(errors.GenericError, match="signature is invalid"):
        x509.LoadSignedX509Certificate(f"{header}\n\n{other}", CDS)
    # A changed salt
    with pytest.raises(errors.GenericError, match="signature is invalid"):
        x509.LoadSignedX509Certificate(signed.replace("abc123/", "abc124/"), CDS)
    # A signature header after the certificate does not count
    with pytest.raises(errors.GenericError, match="missing"):
        x509.LoadSignedX509Certificate(cert_pem + header + "\n", CDS)
    # A damaged certificate body
    body = signed.splitlines()
    body[4] = body[4][:10] + ("A" if body[4][10] != "A" else "B") + body[4][11:]
    with pytest.raises(errors.GenericError):
        x509.LoadSignedX509Certificate("\n".join(body) + "\n", CDS)
    for salt in ("", "a/b", "a b", None):
        with pytest.raises(errors.GenericError, match="Invalid salt"):
            x509.SignX509Certificate(cert_pem, CDS, salt)  # type: ignore[arg-type]
    with pytest.raises(errors.OpPrereqError, match="Unable to load CA.*invalid"):
        rie.CheckSignedCertificate(OTHER, signed, "CA")
    with pytest.raises(errors.OpPrereqError, match="Missing CA"):
        rie.CheckSignedCertificate(CDS, None, "CA")


def test_expired_signed_certificate_refused():
    pem = x509.GenerateSelfSignedX509Cert("old.example.com", -200, 1)[1].decode()
    signed = rie.SignCertificate(CDS, pem)
    with pytest.raises(errors.OpPrereqError, match="Invalid CA.*expired"):
        rie.CheckSignedCertificate(CDS, signed, "CA")


# --- handshake, key name, disk destinations ---------------------------------------------

def test_handshake():
    handshake = rie.ComputeHandshake(CDS)
    assert handshake[0] == constants.RIE_VERSION and len(handshake) == 3
    assert rie.CheckHandshake(CDS, handshake) is None
    assert "don't share the same domain secret" in rie.CheckHandshake(OTHER, handshake)
    # A correctly signed handshake of another protocol version
    salt = "5a17"
    from ganeti import utils
    other_version = [1, utils.Sha1Hmac(CDS, f"1:{constants.RIE_HANDSHAKE}", salt=salt),
                     salt]
    assert "same remote import/export protocol" in rie.CheckHandshake(CDS, other_version)
    for bad in (None, [], [0, "x"], "0:abc:def", [0, None, None], {"a": 1}):
        assert rie.CheckHandshake(CDS, bad)


def test_key_name():
    signed = rie.SignKeyName(CDS, "x509-20240101000000-abc")
    assert rie.CheckKeyName(CDS, signed) == "x509-20240101000000-abc"
    with pytest.raises(errors.GenericError, match="HMAC for X509 key name is wrong"):
        rie.CheckKeyName(OTHER, signed)
    with pytest.raises(errors.GenericError, match="HMAC"):
        rie.CheckKeyName(CDS, ["x509-20240101000000-abd", *signed[1:]])
    for bad in (None, "name", ["a", "b"], [1, 2, 3]):
        with pytest.raises(errors.GenericError, match="Invalid X509 key name"):
            rie.CheckKeyName(CDS, bad)


def test_disk_info():
    info = rie.ComputeDiskInfo(CDS, "5a17", 1, "192.0.2.7", 40123, "magic-1")
    assert info[:3] == ["192.0.2.7", 40123, "magic-1"] and info[4] == "5a17"
    assert rie.CheckDiskInfo(CDS, 1, info) == ("192.0.2.7", 40123, "magic-1")
    with pytest.raises(errors.GenericError, match="HMAC is wrong"):
        rie.CheckDiskInfo(CDS, 0, info)  # signed for another disk
    with pytest.raises(errors.GenericError, match="HMAC is wrong"):
        rie.CheckDiskInfo(OTHER, 1, info)
    with pytest.raises(errors.GenericError, match="HMAC is wrong"):
        rie.CheckDiskInfo(CDS, 1, ["192.0.2.8", *info[1:]])
    with pytest.raises(errors.GenericError, match="HMAC is wrong"):
        rie.CheckDiskInfo(CDS, 1, [info[0], 40124, *info[2:]])
    with pytest.raises(errors.GenericError, match="Missing destination"):
        rie.CheckDiskInfo(CDS, 1, ["", *info[1:]])
    for bad in (None, info[:4], "x"):
        with pytest.raises(errors.GenericError, match="Invalid data"):
            rie.CheckDiskInfo(CDS, 1, bad)
    # Signed but unusable on a command line
    for host, port, magic, match in (("a,b", 1, "magic-1", "host"),
                                     ("h.example.com", 70000, "magic-1", "port"),
                                     ("h.example.com", 5, "m!", "magic")):
        signed = rie.ComputeDiskInfo(CDS, "5a17", 0, host, port, magic)
        with pytest.raises(errors.GenericError, match=f"Invalid.*{match}"):
            rie.CheckDiskInfo(CDS, 0, signed)


def test_missing_domain_secret(tmp_path, monkeypatch):
    monkeypatch.setattr(pathutils, "CLUSTER_DOMAIN_SECRET_FILE", str(tmp_path / "none"))
    with pytest.raises(errors.OpPrereqError, match="renew-crypto") as info:
        rie.ReadDomainSecret()
    assert info.value.args[1] == errors.ECODE_ENVIRON


# --- the source: prepare, check, export ------------------------------------------------

class DaemonRpc(ih.FakeRpc):
    """Also simulates x509 keys and import/export daemons: ``outcome`` maps
    a daemon's component ("disk/N") to its final status (default success)."""

    def __init__(self):
        super().__init__()
        self.keys: dict[str, str] = {}
        #: every key ever created (keys: those not removed)
        self.created: dict[str, str] = {}
        self.daemons: dict[str, dict] = {}
        self.outcome: dict[str, dict] = {}
        self.polls_until_done = 2

    def call_x509_cert_create(self, node, validity):
        self.calls.append(("x509_cert_create", node, validity))
        name = f"x509-20240101000000-k{len(self.keys)}"
        self.keys[name] = x509.GenerateSelfSignedX509Cert(node, validity, 1)[1].decode()
        self.created[name] = self.keys[name]
        return ih._Ok([name, self.keys[name]])

    def call_x509_cert_remove(self, node, name):
        self.calls.append(("x509_cert_remove", node, name))
        if self.keys.pop(name, None) is None:
            return ih._Fail(f"X509 key {name} not found")
        return ih._Ok(None)

    def _Start(self, kind, node, opts, component, ieio, **extra):
        self.calls.append((f"{kind}_start", node, component))
        if f"{kind}_start" in self.fail:
            return ih._Fail(self.fail[f"{kind}_start"])
        name = f"{kind}-{component}-{len(self.daemons)}"
        self.daemons[name] = dict(kind=kind, node=node, opts=opts, component=component,
                                  ieio=ieio, polls=0, **extra)
        return ih._Ok(name)

    def call_import_start(self, node, opts, instance, component, ieio):
        return self._Start("import", node, opts, component, ieio)

    def call_export_start(self, node, opts, host, port, instance, component, ieio):
        return self._Start("export", node, opts, component, ieio, host=host, port=port)

    def call_impexp_status(self, node, names):
        (name,) = names
        daemon = self.daemons[name]
        daemon["polls"] += 1
        status = {"listen_port": 40000 + len(name), "connected": True,
                  "progress_mbytes": 1.0}
        if daemon["polls"] > self.polls_until_done:
            status.update(self.outcome.get(daemon["component"], {"exit_status": 0}))
        return ih._Ok([status])

    def call_impexp_abort(self, node, name):
        self.calls.append(("impexp_abort", node, name))
        return ih._Ok(None)

    def call_impexp_cleanup(self, node, name):
        self.calls.append(("impexp_cleanup", node, name))
        self.daemons.pop(name, None)
        return ih._Ok(None)


def _SourceLu(rpc, ndisks=2, **op):
    disks = [objects.Disk(dev_type=constants.DT_FILE, size=32, uuid=f"d{idx}",
                          logical_id=("loop", f"/x/disk{idx}"), iv_name=f"disk/{idx}",
                          params={}, children=[]) for idx in range(ndisks)]
    instance = objects.Instance(name="inst1.example.com", uuid="inst-uuid",
                                primary_node="node-uuid", disks=[d.uuid for d in disks],
                                disks_active=False, os="noop", hypervisor="fake",
                                nics=[], hvparams={}, beparams={}, osparams={})
    warnings: list[str] = []
    cfg = SimpleNamespace(GetInstanceDisks=lambda uuid: disks,
                          GetInstanceInfo=lambda uuid: instance,
                          GetNodeName=lambda uuid: "node1.example.com",
                          GetNodeInfo=lambda uuid: SimpleNamespace(
                              name="node1.example.com", offline=False),
                          GetClusterInfo=lambda: SimpleNamespace(
                              FillHV=lambda *a, **k: {}, FillBE=lambda *a, **k: {},
                              SimpleFillOS=lambda *a, **k: {}))
    opdict = dict(x509_key_name=None, destination_x509_ca=None, target_node=[],
                  compress="none")
    opdict.update(op)
    return SimpleNamespace(op=SimpleNamespace(**opdict), instance=instance, cfg=cfg,
                           rpc=rpc, LogWarning=warnings.append, LogInfo=lambda m: None,
                           warnings=warnings, disks=disks)


def _Destination(ndisks=2, secret=CDS):
    ca = x509.GenerateSelfSignedX509Cert("dest.example.com", 3600, 1)[1].decode()
    return ([rie.ComputeDiskInfo(secret, "5a1t", idx, "192.0.2.9", 41000 + idx,
                                 f"magic-{idx}") for idx in range(ndisks)],
            rie.SignCertificate(secret, ca), ca)


def test_prepare_and_check(cds_file, monkeypatch):
    rpc = DaemonRpc()
    lu = _SourceLu(rpc)
    answer = backup_remote.PrepareRemoteExport(lu)
    assert set(answer) == {"handshake", "x509_key_name", "x509_ca"}
    (name,) = rpc.keys
    assert rpc.calls == [("x509_cert_create", "node-uuid", constants.RIE_CERT_VALIDITY)]
    assert rie.CheckHandshake(CDS, answer["handshake"]) is None
    assert rie.CheckKeyName(CDS, answer["x509_key_name"]) == name
    assert rie.CheckSignedCertificate(CDS, answer["x509_ca"], "CA") == rpc.keys[name]
    disks, ca, ca_plain = _Destination()
    lu.op.x509_key_name, lu.op.destination_x509_ca, lu.op.target_node = \
        answer["x509_key_name"], ca, disks
    state = backup_remote.CheckRemoteExport(lu)
    assert state.key_name == name and state.dest_ca_pem == ca_plain
    assert state.destinations == [("192.0.2.9", 41000, "magic-0"),
                                  ("192.0.2.9", 41001, "magic-1")]
    assert [d.uuid for d in state.disks] == ["d0", "d1"]


@pytest.mark.parametrize("change, match", [
    (dict(target_node="node2.example.com"), "list of disk destinations"),
    (dict(target_node="one"), "Wrong number of disk destinations: 5 given"),
    (dict(target_node=1), "Wrong number of disk destinations: 1 given.*2 disk"),
    (dict(target_node=3), "Wrong number of disk destinations: 3 given"),
    (dict(target_node="swap"), "disk 0 is invalid: HMAC is wrong"),
    (dict(target_node="other-secret"), "disk 0 is invalid: HMAC is wrong"),
    (dict(x509_key_name=None), "Missing X509 key name"),
    (dict(x509_key_name="tampered"), "Invalid X509 key name: HMAC"),
    (dict(destination_x509_ca=None), "Destination X509 CA must be provided"),
    (dict(destination_x509_ca="other-secret"), "destination X509 CA.*invalid"),
    (dict(destination_x509_ca="unsigned"), "destination X509 CA.*missing"),
])
def test_check_refuses(cds_file, change, match):
    lu = _SourceLu(DaemonRpc())
    disks, ca, ca_plain = _Destination()
    key = rie.SignKeyName(CDS, "x509-20240101000000-k0")
    values = dict(x509_key_name=key, destination_x509_ca=ca, target_node=disks)
    for field, value in change.items():
        if field == "target_node" and isinstance(value, int):
            value = _Destination(value)[0]
        elif value == "swap":
            value = [disks[1], disks[0]]
        elif value == "other-secret" and field == "target_node":
            value = _Destination(2, OTHER)[0]
        elif value == "other-secret":
            value = _Destination(2, OTHER)[1]
        elif value == "tampered":
            value = ["x509-20240101000000-k9", *key[1:]]
        elif value == "unsigned":
            value = ca_plain
        elif value == "one":
            value = disks[0]
        values[field] = value
    for field, value in values.items():
        setattr(lu.op, field, value)
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        backup_remote.CheckRemoteExport(lu)
    assert info.value.args[1] == errors.ECODE_INVAL


def _Prepared(rpc, ndisks=2, **op):
    lu = _SourceLu(rpc, ndisks, **op)
    answer = backup_remote.PrepareRemoteExport(lu)
    disks, ca, _ = _Destination(ndisks)
    lu.op.x509_key_name, lu.op.destination_x509_ca, lu.op.target_node = \
        answer["x509_key_name"], ca, disks
    return lu, backup_remote.CheckRemoteExport(lu)


def test_export_remote(cds_file):
    rpc = DaemonRpc()
    lu, state = _Prepared(rpc, compress="gzip")
    feedback = []
    assert backup_remote.ExportRemote(lu, lambda *a: feedback.append(a), state) == \
        [True, True]
    exports = [c for c in rpc.calls if c[0] == "export_start"]
    assert [c[2] for c in exports] == ["disk/0", "disk/1"]
    assert rpc.daemons == {}  # all cleaned up
    names = rpc.names()
    assert names.count("impexp_cleanup") == 2 and "impexp_abort" not in names
    assert rpc.keys == {}  # the per-move key is gone
    assert ("Sending disk 1 to 192.0.2.9:41001",) in feedback
    assert "blockdev_assemble" in names and names.count("blockdev_shutdown") == 2


def test_export_remote_options(cds_file, monkeypatch):
    rpc = DaemonRpc()
    seen = []
    real = rpc.call_export_start

    def _Record(node, opts, host, port, instance, component, ieio):
        seen.append((opts, host, port, ieio))
        return real(node, opts, host, port, instance, component, ieio)
    rpc.call_export_start = _Record
    lu, state = _Prepared(rpc, 1, compress="gzip")
    backup_remote.ExportRemote(lu, lambda *a: None, state)
    ((opts, host, port, ieio),) = seen
    assert (host, port) == ("192.0.2.9", 41000)
    assert opts["key_name"] == state.key_name and opts["ca_pem"] == state.dest_ca_pem
    assert opts["magic"] == "magic-0" and opts["compress"] == "gzip"
    assert ieio[0] == constants.IEIO_RAW_DISK and ieio[1][0]["uuid"] == "d0"


def test_export_remote_failure_is_per_disk(cds_file):
    rpc = DaemonRpc()
    rpc.outcome["disk/1"] = {"exit_status": 1, "error_message": "connection reset"}
    lu, state = _Prepared(rpc)
    assert backup_remote.ExportRemote(lu, lambda *a: None, state) == [True, False]
    assert any("disk 1" in w and "connection reset" in w for w in lu.warnings)
    names = rpc.names()
    assert names.count("impexp_abort") == 1 and names.count("impexp_cleanup") == 2
    assert rpc.keys == {}


def test_export_remote_start_failure(cds_file):
    rpc = DaemonRpc()
    rpc.fail["export_start"] = "no route"
    lu, state = _Prepared(rpc)
    assert backup_remote.ExportRemote(lu, lambda *a: None, state) == [False, False]
    assert rpc.keys == {} and "impexp_cleanup" not in rpc.names()


def test_export_remote_assembly_failure(cds_file):
    rpc = DaemonRpc()
    rpc.fail["blockdev_assemble"] = "no such file"
    lu, state = _Prepared(rpc)
    assert backup_remote.ExportRemote(lu, lambda *a: None, state) == [False, False]
    assert "export_start" not in rpc.names() and rpc.keys == {}


# --- the destination: remote import through LUInstanceCreate --------------------------

def _ImportOp(ndisks=2, secret=CDS, **kwargs):
    source_ca = x509.GenerateSelfSignedX509Cert("src.example.com", 3600, 1)[1].decode()
    params = dict(mode=constants.INSTANCE_REMOTE_IMPORT,
                  disk_template=constants.DT_FILE,
                  disks=[{"size": 32}] * ndisks, name_check=False, ip_check=False,
                  source_handshake=rie.ComputeHandshake(secret),
                  source_x509_ca=rie.SignCertificate(secret, source_ca),
                  source_instance_name="inst1.example.com", start=False,
                  ignore_ipolicy=True)
    params.update(kwargs)
    return ih.CreateOp(**params), source_ca


@pytest.fixture
def ctx(tmp_path, cds_file):
    context = ih.MakeContext(tmp_path)
    context.rpc = DaemonRpc()
    return context


def test_remote_import(ctx):
    op, source_ca = _ImportOp()
    result, cbs = ih.Run(ctx, op)
    assert result == [ih.MASTER]
    inst = ctx.cfg.GetInstanceInfoByName("inst1.example.com")
    assert inst is not None and not inst.forthcoming
    entries = [msg for kind, msg in cbs.feedback if kind == constants.ELOG_REMOTE_IMPORT]
    (entry,) = entries
    # The destinations and CA the source's export will check
    dests = [rie.CheckDiskInfo(CDS, idx, info) for idx, info in enumerate(entry["disks"])]
    assert [d[0] for d in dests] == ["192.0.2.1"] * 2
    (key,) = [c[2] for c in ctx.rpc.calls if c[0] == "x509_cert_remove"]
    assert rie.CheckSignedCertificate(CDS, entry["x509_ca"], "CA") == \
        ctx.rpc.created[key]
    imports = [c for c in ctx.rpc.calls if c[0] == "import_start"]
    assert [c[2] for c in imports] == ["disk/0", "disk/1"]
    assert ctx.rpc.keys == {} and ctx.rpc.daemons == {}
    assert "instance_os_add" not in ctx.rpc.names()
    assert key.startswith("x509-")


def test_remote_import_options(ctx):
    seen = []
    real = ctx.rpc.call_import_start

    def _Record(node, opts, instance, component, ieio):
        seen.append(opts)
        return real(node, opts, instance, component, ieio)
    ctx.rpc.call_import_start = _Record
    op, source_ca = _ImportOp(1, compress="gzip")
    ih.Run(ctx, op)
    ((opts),) = seen
    assert opts["ca_pem"] == source_ca and opts["key_name"].startswith("x509-")
    assert opts["listen_address"] == "192.0.2.1" and opts["compress"] == "gzip"
    assert opts["connect_timeout"] == constants.RIE_CONNECT_TIMEOUT


def test_remote_import_failure_removes_everything(ctx):
    ctx.rpc.outcome["disk/1"] = {"exit_status": -1,
                                 "error_message": "the daemon ended without reporting"}
    op, _ = _ImportOp()
    with pytest.raises(errors.OpExecError, match="Disk 1 failed to receive data"):
        ih.Run(ctx, op)
    assert ctx.cfg.GetInstanceInfoByName("inst1.example.com") is None
    names = ctx.rpc.names()
    assert "blockdev_remove" in names and ctx.rpc.keys == {} and ctx.rpc.daemons == {}
    assert "instance_start" not in names


@pytest.mark.parametrize("change, match", [
    (dict(secret=OTHER), "Invalid handshake: Hash didn't match"),
    (dict(source_handshake=None), "Missing source handshake"),
    (dict(source_instance_name=None), "Missing source instance name"),
    (dict(source_x509_ca=None), "Missing source X509 CA"),
    (dict(source_x509_ca="unsigned"), "source X509 CA: X509 certificate signature is"
                                      " missing"),
    (dict(no_install=True), "no-install"),
])
def test_remote_import_refused(ctx, change, match):
    change = dict(change)
    if change.get("source_x509_ca") == "unsigned":
        change["source_x509_ca"] = \
            x509.GenerateSelfSignedX509Cert("s", 3600, 1)[1].decode()
    op, _ = _ImportOp(**change)
    ih.Refused(ctx, op, errors.ECODE_INVAL, match)
    assert "x509_cert_create" not in ctx.rpc.names()


def test_remote_import_ca_signed_with_another_secret(ctx):
    op, _ = _ImportOp()
    other_ca = x509.GenerateSelfSignedX509Cert("s", 3600, 1)[1].decode()
    op.source_x509_ca = rie.SignCertificate(OTHER, other_ca)
    ih.Refused(ctx, op, errors.ECODE_INVAL, "source X509 CA.*invalid")
