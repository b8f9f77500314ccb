"""The RAPI certificate: ECDSA by default, a user's RSA one still served."""

from __future__ import annotations

import ssl

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from ganeti import crypto_setup, errors
from ganeti.rapi import server
from ganeti.utils import x509


def _Handshake(cert_file: str) -> None:
    """Run a verified TLS handshake against MakeSslContext, in memory."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    srv = server.MakeSslContext(cert_file).wrap_bio(s_in, s_out, server_side=True)
    ctx = ssl.create_default_context(cafile=cert_file)
    ctx.check_hostname = False
    cli = ctx.wrap_bio(c_in, c_out)
    done = {"cli": False, "srv": False}
    for _ in range(10):
        for name, obj, out, peer_in in (("cli", cli, c_out, s_in),
                                        ("srv", srv, s_out, c_in)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out.read())
        if all(done.values()):
            break
    assert all(done.values())
    assert cli.getpeercert() is not None


def test_rapi_cert_is_ecdsa_p256(tmp_path):
    path = tmp_path / "rapi.pem"
    crypto_setup.GenerateRapiCert(str(path))
    pem = path.read_bytes()
    key = load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    cert = x509.ReadCertificateFile(str(path))
    assert x509.IsSignedBy(cert, cert)
    assert x509.VerifyCertificate(str(path)) == (None, None)
    assert (path.stat().st_mode & 0o777) == 0o440
    _Handshake(str(path))


def test_user_supplied_rsa_cert_still_served(tmp_path):
    path = tmp_path / "rapi.pem"
    key_pem, cert_pem = x509.GenerateSelfSignedX509Cert("rapi.example.com", 3600, 5)
    crypto_setup.GenerateClusterCrypto(
        False, False, False, rapi_cert_pem=(key_pem + cert_pem).decode(),
        nodecert_file=str(tmp_path / "server.pem"),
        clientcert_file=str(tmp_path / "client.pem"), rapicert_file=str(path),
        hmackey_file=str(tmp_path / "hmac.key"), cds_file=str(tmp_path / "cds"))
    assert isinstance(load_pem_private_key(path.read_bytes(), password=None),
                      rsa.RSAPrivateKey)
    _Handshake(str(path))


def test_unknown_key_type_refused():
    with pytest.raises(errors.ProgrammerError, match="dsa"):
        x509.GenerateSelfSignedX509Cert("x", 60, 1, key_type="dsa")
