"""backend.crypto: per-move X509 keys (x509_cert_create/x509_cert_remove),
and a transfer between two daemons each using such a key and trusting only
the other's certificate, as in a move between clusters."""

from __future__ import annotations

import os
import shutil
import stat
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_impexp as ti  # noqa: E402
from ganeti import constants, pathutils, utils  # noqa: E402
from ganeti.backend import RPCFail, crypto, impexp  # noqa: E402
from ganeti.rpc import defs  # noqa: E402
from ganeti.rpc.dispatch import ResolveHandler  # noqa: E402
from ganeti.utils import x509  # noqa: E402

node = ti.node  # the fixture: a node root, daemons cleaned up


def test_rpc_table():
    for call, args in (("x509_cert_create", ["validity"]), ("x509_cert_remove", ["name"])):
        assert defs.CALLS[call].single
        assert defs.CALLS[call].arg_names == args
        ResolveHandler(defs.CALLS[call].handler)


def test_create_and_remove(node_root):
    name, pem = crypto.CreateX509Certificate(3600)
    directory = os.path.join(pathutils.CRYPTO_KEYS_DIR, name)
    assert name.startswith("x509-")
    cert = x509.LoadX509Certificate(pem)
    assert x509.GetCommonName(cert) == utils.Hostname.GetSysName()
    not_before, not_after = x509.GetX509CertValidity(cert)
    assert 3500 < not_after - not_before - 300 <= 3600
    with open(os.path.join(directory, "cert"), encoding="ascii") as fd:
        assert fd.read() == pem
    assert stat.S_IMODE(os.stat(os.path.join(directory, "key")).st_mode) == 0o400
    assert stat.S_IMODE(os.stat(pathutils.CRYPTO_KEYS_DIR).st_mode) == 0o700
    crypto.RemoveX509Certificate(name)
    assert not os.path.exists(directory)
    with pytest.raises(RPCFail, match="not found"):
        crypto.RemoveX509Certificate(name)


@pytest.mark.parametrize("validity", [0, -1, "3600", True, None,
                                      crypto.MAX_VALIDITY + 1])
def test_bad_validity(node_root, validity):
    with pytest.raises(RPCFail, match="Invalid certificate validity"):
        crypto.CreateX509Certificate(validity)


@pytest.mark.parametrize("name", ["../x509-20240101000000-abc", "x509-1-a", "", None,
                                  "x509-20240101000000-a/b", "server.pem"])
def test_bad_names(node_root, name):
    with pytest.raises(RPCFail, match="Invalid X509 key name"):
        crypto.RemoveX509Certificate(name)


@pytest.mark.skipif(shutil.which("socat") is None, reason="needs socat")
def test_transfer_with_per_move_keys(node):
    src_key, src_pem = crypto.CreateX509Certificate(3600)
    dst_key, dst_pem = crypto.CreateX509Certificate(3600)
    os.makedirs(f"{node}{ti.EXPORTS}/inst1")
    data = os.urandom(100000)
    with open(f"{node}{ti.EXPORTS}/inst1/disk0", "wb") as fd:
        fd.write(data)
    imp = impexp.StartImport(ti._Opts(key_name=dst_key, ca_pem=src_pem), ti.INSTANCE,
                             "disk/0", (constants.IEIO_FILE, [f"{ti.EXPORTS}/inst1/copy"]))
    port = ti._Status(imp)["listen_port"]
    exp = impexp.StartExport(ti._Opts(key_name=src_key, ca_pem=dst_pem), "127.0.0.1",
                             port, ti.INSTANCE, "disk/0",
                             (constants.IEIO_FILE, [f"{ti.EXPORTS}/inst1/disk0"]))
    assert (ti._WaitEnd(exp)["exit_status"], ti._WaitEnd(imp)["exit_status"]) == (0, 0)
    with open(f"{node}{ti.EXPORTS}/inst1/copy", "rb") as fd:
        assert fd.read() == data
    for name in (src_key, dst_key):
        crypto.RemoveX509Certificate(name)


@pytest.mark.skipif(shutil.which("socat") is None, reason="needs socat")
def test_transfer_refused_with_another_ca(node):
    """An exporter whose certificate the importer's CA did not sign is
    refused (the importer trusts only the source's per-move certificate)."""
    src_key, _ = crypto.CreateX509Certificate(3600)
    dst_key, dst_pem = crypto.CreateX509Certificate(3600)
    _, other_pem = crypto.CreateX509Certificate(3600)
    os.makedirs(f"{node}{ti.EXPORTS}/inst1")
    with open(f"{node}{ti.EXPORTS}/inst1/disk0", "wb") as fd:
        fd.write(b"secret" * 100)
    imp = impexp.StartImport(ti._Opts(key_name=dst_key, ca_pem=other_pem), ti.INSTANCE,
                             "disk/0", (constants.IEIO_FILE, [f"{ti.EXPORTS}/inst1/copy"]))
    port = ti._Status(imp)["listen_port"]
    exp = impexp.StartExport(ti._Opts(key_name=src_key, ca_pem=dst_pem), "127.0.0.1",
                             port, ti.INSTANCE, "disk/0",
                             (constants.IEIO_FILE, [f"{ti.EXPORTS}/inst1/disk0"]))
    assert ti._WaitEnd(exp)["exit_status"] != 0
    impexp.Abort(imp)
    assert ti._WaitEnd(imp)["exit_status"] != 0
    copy = f"{node}{ti.EXPORTS}/inst1/copy"
    assert not os.path.exists(copy) or os.path.getsize(copy) == 0


# --- node_crypto_tokens: the node's client certificate ----------------------------------

def _ServerPem():
    x509.GenerateSelfSignedSslCert(pathutils.NODED_CERT_FILE, 1)
    return x509.ReadCertificateFile(pathutils.NODED_CERT_FILE)


def test_crypto_tokens_rpc_entry():
    call = defs.CALLS["node_crypto_tokens"]
    assert call.single and call.arg_names == ["token_requests"]
    assert ResolveHandler(call.handler) is crypto.GetCryptoTokens


def test_crypto_tokens_get_and_create(node_root):
    server = _ServerPem()
    get = [(constants.CRYPTO_TYPE_SSL_DIGEST, constants.CRYPTO_ACTION_GET, None)]
    create = [(constants.CRYPTO_TYPE_SSL_DIGEST, constants.CRYPTO_ACTION_CREATE,
               {constants.CRYPTO_OPTION_SERIAL_NO: 42})]
    with pytest.raises(RPCFail, match="Cannot read the client certificate"):
        crypto.GetCryptoTokens(get)
    ((kind, digest),) = crypto.GetCryptoTokens(create)
    assert kind == constants.CRYPTO_TYPE_SSL_DIGEST
    cert = x509.ReadCertificateFile(pathutils.NODED_CLIENT_CERT_FILE)
    assert digest == x509.GetCertDigest(cert)
    assert x509.IsSignedBy(cert, server)
    assert cert.serial_number == 42
    assert x509.GetCommonName(cert) == utils.Hostname.GetSysName()
    mode = os.stat(pathutils.NODED_CLIENT_CERT_FILE).st_mode
    assert stat.S_IMODE(mode) == constants.NODED_CLIENT_CERT_MODE
    assert crypto.GetCryptoTokens(get) == [(kind, digest)]
    ((_, renewed),) = crypto.GetCryptoTokens(
        [(constants.CRYPTO_TYPE_SSL_DIGEST, constants.CRYPTO_ACTION_CREATE, {})])
    assert renewed != digest


@pytest.mark.parametrize("requests,match", [
    ("ssl", "Invalid crypto token requests"),
    ([("ssl", "get")], "Invalid crypto token request"),
    ([("ssh", "get", None)], "Unknown crypto token type"),
    ([("ssl", "delete", None)], "Unknown crypto token action"),
    ([("ssl", "create", [])], "Invalid crypto token options"),
    ([("ssl", "create", {"serial_no": "1"})], "Invalid certificate serial number"),
])
def test_crypto_tokens_bad_requests(node_root, requests, match):
    _ServerPem()
    with pytest.raises(RPCFail, match=match):
        crypto.GetCryptoTokens(requests)
    assert not os.path.exists(pathutils.NODED_CLIENT_CERT_FILE)


def test_crypto_tokens_without_server_pem(node_root):
    with pytest.raises(RPCFail, match="Cannot create a new client certificate"):
        crypto.GetCryptoTokens([("ssl", "create", None)])
