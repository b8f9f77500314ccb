"""ganeti.utils.x509: certificate generation, digests, validity."""

from __future__ import annotations

import datetime
import os
import re
import stat

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives.asymmetric import rsa

from ganeti import constants, errors
from ganeti.utils import x509


@pytest.fixture(scope="module")
def ca_pem():
    key_pem, cert_pem = x509.GenerateSelfSignedX509Cert("ca.example.com", 3600, 7)
    return key_pem + cert_pem


def test_self_signed(ca_pem):
    cert = x509.LoadX509Certificate(ca_pem)
    assert x509.GetCommonName(cert) == "ca.example.com"
    assert cert.serial_number == 7
    assert cert.issuer == cert.subject
    assert cert.extensions.get_extension_for_class(cx509.BasicConstraints).value.ca
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == constants.RSA_KEY_BITS
    assert cert.signature_hash_algorithm.name == "sha256"
    assert x509.IsSignedBy(cert, cert)
    not_before, not_after = x509.GetX509CertValidity(cert)
    assert 3500 < not_after - not_before - 300 < 3700


def test_signed_by_ca(ca_pem):
    _, cert_pem = x509.GenerateSignedX509Cert("node1", 3600, 99, ca_pem)
    cert = x509.LoadX509Certificate(cert_pem)
    ca = x509.LoadX509Certificate(ca_pem)
    assert x509.GetCommonName(cert) == "node1"
    assert cert.issuer == ca.subject
    assert x509.IsSignedBy(cert, ca)
    assert not cert.extensions.get_extension_for_class(cx509.BasicConstraints).value.ca
    other = x509.LoadX509Certificate(x509.GenerateSelfSignedX509Cert("x", 60, 1)[1])
    assert not x509.IsSignedBy(cert, other)


def test_files_and_digest(tmp_path):
    server = str(tmp_path / "server.pem")
    client = str(tmp_path / "client.pem")
    x509.GenerateSelfSignedSslCert(server, 1)
    assert stat.S_IMODE(os.stat(server).st_mode) == constants.NODED_CERT_MODE
    with open(server, encoding="ascii") as fd:
        text = fd.read()
    assert "PRIVATE KEY" in text and "CERTIFICATE" in text
    x509.GenerateSignedSslCert(client, 5, server, common_name="node9")
    assert stat.S_IMODE(os.stat(client).st_mode) == constants.NODED_CLIENT_CERT_MODE
    digest = x509.GetCertificateDigest(client)
    assert re.fullmatch(r"([0-9A-F]{2}:){19}[0-9A-F]{2}", digest)
    assert x509.GetCertificateDigest(client, "sha256").count(":") == 31
    # Renewing keeps a backup of the old file
    x509.GenerateSignedSslCert(client, 6, server, common_name="node9")
    assert any(name.startswith("client.pem.backup-") for name in os.listdir(tmp_path))
    assert x509.GetCertificateDigest(client) != digest
    assert x509.VerifyCertificate(client) == (None, None)


def test_unreadable_certificates(tmp_path):
    with pytest.raises(errors.X509CertError, match="Cannot read"):
        x509.ReadCertificateFile(str(tmp_path / "missing"))
    bad = tmp_path / "bad.pem"
    bad.write_text("nonsense")
    with pytest.raises(errors.X509CertError, match="Cannot parse"):
        x509.ReadCertificateFile(str(bad))
    with pytest.raises(errors.X509CertError):
        x509.LoadX509Certificate("nonsense")
    code, msg = x509.VerifyCertificate(str(bad))
    assert code == constants.CV_ERROR and "Failed to load" in msg


def test_validity_checks(ca_pem):
    cert = x509.LoadX509Certificate(ca_pem)
    not_before, not_after = x509.GetX509CertValidity(cert)
    day = 86400
    assert x509.VerifyX509Certificate(cert, 0, 0, now=not_before + 10) == (None, None)
    code, msg = x509.VerifyX509Certificate(cert, 30, 7, now=not_before - 10)
    assert code == x509.CERT_ERROR and "not yet valid" in msg
    code, msg = x509.VerifyX509Certificate(cert, 30, 7, now=not_after + 10)
    assert code == x509.CERT_ERROR and "expired" in msg
    # A one-hour certificate expires within the warning and error windows
    code, msg = x509.VerifyX509Certificate(cert, 30, 7, now=not_after - 3000)
    assert code == x509.CERT_ERROR and "expires in 0 days" in msg
    long_cert = x509.LoadX509Certificate(
        x509.GenerateSelfSignedX509Cert("l", 20 * day, 1)[1])
    code, msg = x509.VerifyX509Certificate(long_cert, 30, 7)
    assert code == x509.CERT_WARNING and "expires in 19 days" in msg


def test_extract(ca_pem):
    cert, pem = x509.ExtractX509Certificate(ca_pem.decode())
    assert b"PRIVATE KEY" not in pem and pem.startswith(b"-----BEGIN CERTIFICATE")
    assert cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC)
