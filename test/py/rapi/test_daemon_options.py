"""ganeti-rapi's -i (interface) and --ssl-chain (intermediate certificates)."""

from __future__ import annotations

import datetime
import ssl

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ganeti import errors, pathutils
from ganeti.rapi import server
from ganeti.server import rapi as rapi_daemon


def _Cert(name, key, issuer_name, issuer_key, ca):
    now = datetime.datetime.now(datetime.UTC)
    builder = (cx509.CertificateBuilder()
               .subject_name(cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME,
                                                            issuer_name)]))
               .public_key(key.public_key()).serial_number(cx509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(cx509.BasicConstraints(ca=ca, path_length=None),
                              critical=True))
    if ca:
        builder = builder.add_extension(cx509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True,
            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


def _Pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def pki(tmp_path):
    """root CA -> intermediate CA -> server certificate (key in its file)."""
    root_key, inter_key, leaf_key = (ec.generate_private_key(ec.SECP256R1())
                                     for _ in range(3))
    root = _Cert("root", root_key, "root", root_key, True)
    inter = _Cert("intermediate", inter_key, "root", root_key, True)
    leaf = _Cert("rapi.example.com", leaf_key, "intermediate", inter_key, False)
    key_pem = leaf_key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    files = {"root": tmp_path / "root.pem", "chain": tmp_path / "chain.pem",
             "rapi": tmp_path / "rapi.pem"}
    files["root"].write_bytes(_Pem(root))
    files["chain"].write_bytes(_Pem(inter))
    files["rapi"].write_bytes(key_pem + _Pem(leaf))
    return {name: str(path) for name, path in files.items()}


def _Handshake(server_ctx, cafile):
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    srv = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    ctx = ssl.create_default_context(cafile=cafile)
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
            return True
    return False


def test_chain_lets_clients_trusting_the_root_verify(pki):
    ctx = server.MakeSslContext(pki["rapi"], chain_file=pki["chain"])
    assert _Handshake(ctx, pki["root"])


def test_without_chain_verification_fails(pki):
    ctx = server.MakeSslContext(pki["rapi"])
    with pytest.raises(ssl.SSLCertVerificationError):
        _Handshake(ctx, pki["root"])


def test_bad_chain_file_is_refused(pki, tmp_path):
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here\n")
    with pytest.raises(ssl.SSLError, match="No certificate found"):
        server.MakeSslContext(pki["rapi"], chain_file=str(empty))
    with pytest.raises(OSError):
        server.MakeSslContext(pki["rapi"], chain_file=str(tmp_path / "nosuch.pem"))


def test_daemon_refuses_bad_chain(pki, tmp_path, monkeypatch):
    monkeypatch.setattr(pathutils, "RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setattr(pathutils, "LOG_DIR", str(tmp_path / "log"))
    code = rapi_daemon.Main(["-f", "-p", "0", "-b", "127.0.0.1", "-C", pki["rapi"],
                             "--ssl-chain", str(tmp_path / "nosuch.pem"),
                             "--log-file", str(tmp_path / "rapi.log"),
                             "--users-file", str(tmp_path / "users")])
    assert code == 1
    assert "Cannot load the RAPI certificate" in (tmp_path / "rapi.log").read_text()


def test_interface_address():
    assert rapi_daemon.GetInterfaceAddress("lo") == "127.0.0.1"
    for bad in ("nosuch0", "", "a" * 20, "../x"):
        with pytest.raises(errors.GenericError):
            rapi_daemon.GetInterfaceAddress(bad)


@pytest.mark.parametrize("argv,message", [
    (["-i", "nosuch0"], "interface 'nosuch0'"),
    (["-i", "lo", "-b", "127.0.0.1"], "either -b or -i"),
])
def test_daemon_interface_errors(argv, message, capsys):
    assert rapi_daemon.Main(["-f", "-p", "0", *argv]) == 1
    assert message in capsys.readouterr().err
