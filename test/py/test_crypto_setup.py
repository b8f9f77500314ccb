"""ganeti.crypto_setup: the cluster's certificates, keys and secrets."""

from __future__ import annotations

import os
import re
import stat

import pytest

from ganeti import constants, crypto_setup, pathutils
from ganeti.utils import x509

NAMES = [constants.SERVER_PEM_NAME, constants.CLIENT_PEM_NAME,
         constants.RAPI_PEM_NAME, constants.CONFD_HMAC_KEY_NAME,
         constants.CLUSTER_DOMAIN_SECRET_NAME]


@pytest.fixture
def data_dir(tmp_path):
    root = tmp_path / "master.example.com"
    (root / "var/lib/ganeti").mkdir(parents=True)
    pathutils._SetRoot(str(root), "master.example.com")
    yield pathutils.DATA_DIR
    pathutils.Reload()


def _Mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _Read(path: str) -> str:
    with open(path, encoding="ascii") as fd:
        return fd.read()


def test_cluster_init_creates_everything(data_dir):
    crypto_setup.GenerateClusterCrypto(True, True, True, True,
                                       master_name="master.example.com")
    assert sorted(os.listdir(data_dir)) == sorted(NAMES)
    assert _Mode(pathutils.NODED_CERT_FILE) == 0o440
    assert _Mode(pathutils.NODED_CLIENT_CERT_FILE) == 0o440
    assert _Mode(pathutils.RAPI_CERT_FILE) == 0o440
    assert _Mode(pathutils.CONFD_HMAC_KEY) == 0o440
    assert _Mode(pathutils.CLUSTER_DOMAIN_SECRET_FILE) == 0o640

    server = x509.ReadCertificateFile(pathutils.NODED_CERT_FILE)
    client = x509.ReadCertificateFile(pathutils.NODED_CLIENT_CERT_FILE)
    rapi = x509.ReadCertificateFile(pathutils.RAPI_CERT_FILE)
    assert x509.GetCommonName(server) == constants.X509_CERT_CN
    assert x509.GetCommonName(client) == "master.example.com"
    assert x509.IsSignedBy(client, server)
    assert x509.IsSignedBy(rapi, rapi) and not x509.IsSignedBy(rapi, server)
    for path in (pathutils.NODED_CERT_FILE, pathutils.RAPI_CERT_FILE,
                 pathutils.NODED_CLIENT_CERT_FILE):
        assert "PRIVATE KEY" in _Read(path)
    assert re.fullmatch(r"[0-9a-f]{40}\n", _Read(pathutils.CONFD_HMAC_KEY))
    assert _Read(pathutils.CONFD_HMAC_KEY) != _Read(pathutils.CLUSTER_DOMAIN_SECRET_FILE)


def test_existing_files_are_kept_unless_renewed(data_dir):
    crypto_setup.GenerateClusterCrypto(False, False, False, master_name="m")
    before = {name: _Read(os.path.join(data_dir, name)) for name in NAMES}
    crypto_setup.GenerateClusterCrypto(False, False, False, master_name="m")
    assert {name: _Read(os.path.join(data_dir, name)) for name in NAMES} == before

    crypto_setup.GenerateClusterCrypto(False, False, True)
    assert _Read(pathutils.CONFD_HMAC_KEY) != before[constants.CONFD_HMAC_KEY_NAME]
    assert _Read(pathutils.NODED_CERT_FILE) == before[constants.SERVER_PEM_NAME]
    # The old key was backed up
    assert any(name.startswith("hmac.key.backup-") for name in os.listdir(data_dir))

    # A new cluster certificate also renews the client certificate it signs
    crypto_setup.GenerateClusterCrypto(True, False, False, master_name="m")
    server = x509.ReadCertificateFile(pathutils.NODED_CERT_FILE)
    client = x509.ReadCertificateFile(pathutils.NODED_CLIENT_CERT_FILE)
    assert _Read(pathutils.NODED_CERT_FILE) != before[constants.SERVER_PEM_NAME]
    assert x509.IsSignedBy(client, server)
    assert _Read(pathutils.RAPI_CERT_FILE) == before[constants.RAPI_PEM_NAME]


def test_given_rapi_cert_and_secret(data_dir, tmp_path):
    key, cert = x509.GenerateSelfSignedX509Cert("rapi.example.com", 3600, 3)
    crypto_setup.GenerateClusterCrypto(False, False, False, master_name="m",
                                       rapi_cert_pem=(key + cert).decode(), cds="s3cret")
    assert x509.GetCommonName(x509.ReadCertificateFile(pathutils.RAPI_CERT_FILE)) == \
        "rapi.example.com"
    assert _Mode(pathutils.RAPI_CERT_FILE) == 0o440
    assert _Read(pathutils.CLUSTER_DOMAIN_SECRET_FILE) == "s3cret"


def test_no_client_cert_without_node_name(data_dir):
    crypto_setup.GenerateClusterCrypto(True, False, False)
    assert not os.path.exists(pathutils.NODED_CLIENT_CERT_FILE)


def test_owners():
    uid, gid = crypto_setup.GetOwner(constants.SERVER_PEM_NAME)
    assert uid == -1 or uid >= 0
    assert set(crypto_setup.CRYPTO_FILES) == set(NAMES) | {
        constants.SPICE_CERT_NAME, constants.SPICE_CACERT_NAME}
    assert crypto_setup.CRYPTO_FILES[constants.SPICE_CERT_NAME].mode == 0o440
    assert crypto_setup.CRYPTO_FILES[constants.RAPI_PEM_NAME].user == "rapi"
    assert crypto_setup.CRYPTO_FILES[constants.CONFD_HMAC_KEY_NAME].user == "confd"
