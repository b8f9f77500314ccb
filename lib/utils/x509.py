"""X.509 certificates: generation, loading, digests and validity checks.

The cluster certificate (``server.pem``) is self-signed and doubles as the
certificate authority for the per-node client certificates (``client.pem``).
Key and certificate are kept together in one PEM file, as Ganeti does, so a
daemon needs a single path for both.

Everything here uses the ``cryptography`` package; TLS sockets themselves
come from the standard ``ssl`` module (see ``ganeti.http``).
"""

from __future__ import annotations

import datetime
import hashlib
import re

from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from ganeti import constants, errors

#: Result codes of :func:`VerifyX509Certificate`
CERT_WARNING = 1
CERT_ERROR = 2

_SIGN_DIGESTS: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}

#: Key types of :func:`GenerateSelfSignedX509Cert`: RSA (``RSA_KEY_BITS``) as
#: Ganeti uses everywhere, or ECDSA on NIST P-256, whose TLS handshake costs
#: the server a fraction of an RSA-2048 one (used for the RAPI certificate)
KEY_TYPE_RSA = "rsa"
KEY_TYPE_ECDSA = "ecdsa"
KEY_TYPES = frozenset([KEY_TYPE_RSA, KEY_TYPE_ECDSA])

# Certificates are backdated a little so that a clock slightly behind the
# generating node's does not reject a brand-new certificate.
_NOT_BEFORE_SLACK = datetime.timedelta(minutes=5)


def _AsBytes(pem: str | bytes) -> bytes:
    return pem.encode("ascii") if isinstance(pem, str) else pem


def _NewRsaKey() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537,
                                    key_size=constants.RSA_KEY_BITS)


def _NewKey(key_type: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if key_type == KEY_TYPE_RSA:
        return _NewRsaKey()
    if key_type == KEY_TYPE_ECDSA:
        return ec.generate_private_key(ec.SECP256R1())
    raise errors.ProgrammerError(f"Unknown key type '{key_type}'")


def _Name(common_name: str | None) -> cx509.Name:
    if not common_name:
        return cx509.Name([])
    return cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _Build(subject: cx509.Name, issuer: cx509.Name, public_key,
           issuer_public_key, validity: int, serial_no: int,
           is_ca: bool) -> cx509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    builder = (cx509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer)
               .public_key(public_key)
               .serial_number(serial_no)
               .not_valid_before(now - _NOT_BEFORE_SLACK)
               .not_valid_after(now + datetime.timedelta(seconds=validity))
               .add_extension(cx509.BasicConstraints(ca=is_ca, path_length=None),
                              critical=True)
               .add_extension(cx509.SubjectKeyIdentifier.from_public_key(
                   public_key), critical=False)
               .add_extension(cx509.AuthorityKeyIdentifier.from_issuer_public_key(
                   issuer_public_key), critical=False))
    if is_ca:
        # RSA keys may also encipher (TLS RSA key exchange); ECDSA keys only sign
        builder = builder.add_extension(
            cx509.KeyUsage(digital_signature=True, content_commitment=False,
                           key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                           data_encipherment=False,
                           key_agreement=False, key_cert_sign=True,
                           crl_sign=True, encipher_only=False,
                           decipher_only=False), critical=False)
    return builder


def _Sign(builder: cx509.CertificateBuilder, key) -> cx509.Certificate:
    digest = _SIGN_DIGESTS[constants.X509_CERT_SIGN_DIGEST]()
    return builder.sign(key, digest)


def _KeyPem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def GenerateSelfSignedX509Cert(common_name: str | None, validity: int,
                               serial_no: int,
                               key_type: str = KEY_TYPE_RSA) -> tuple[bytes, bytes]:
    """Generate a new key and a self-signed CA certificate for it.

    ``validity`` is in seconds; ``key_type`` is one of :data:`KEY_TYPES`.
    Returns the PEM-encoded key and certificate.
    """
    key = _NewKey(key_type)
    name = _Name(common_name)
    cert = _Sign(_Build(name, name, key.public_key(), key.public_key(),
                        validity, serial_no, is_ca=True), key)
    return _KeyPem(key), cert.public_bytes(serialization.Encoding.PEM)


def GenerateSignedX509Cert(common_name: str | None, validity: int,
                           serial_no: int,
                           signing_cert_pem: str | bytes) -> tuple[bytes, bytes]:
    """Generate a new key and a certificate signed by another key.

    ``signing_cert_pem`` holds the signer's private key and certificate
    (a ``server.pem``). ``validity`` is in seconds.
    """
    signing_pem = _AsBytes(signing_cert_pem)
    signing_key = serialization.load_pem_private_key(signing_pem, password=None)
    signing_cert = cx509.load_pem_x509_certificate(signing_pem)
    key = _NewRsaKey()
    cert = _Sign(_Build(_Name(common_name), signing_cert.subject,
                        key.public_key(), signing_key.public_key(),
                        validity, serial_no, is_ca=False), signing_key)
    return _KeyPem(key), cert.public_bytes(serialization.Encoding.PEM)


def _WritePem(filename: str, data: bytes, mode: int, uid: int, gid: int,
              backup: bool = False) -> None:
    # Imported here: ganeti.utils may import this module while it loads
    from ganeti import utils
    utils.WriteFile(filename, data=data, mode=mode, uid=uid, gid=gid,
                    backup=backup)


def GenerateSelfSignedSslCert(filename: str, serial_no: int,
                              common_name: str = constants.X509_CERT_CN,
                              validity: int = constants.X509_CERT_DEFAULT_VALIDITY,
                              uid: int = -1, gid: int = -1,
                              mode: int = constants.NODED_CERT_MODE,
                              key_type: str = KEY_TYPE_RSA,
                              ) -> tuple[bytes, bytes]:
    """Write a new self-signed key and certificate to ``filename``.

    ``validity`` is in days; ``key_type`` is one of :data:`KEY_TYPES`. The
    file holds the key followed by the certificate and is written
    atomically with ``mode``.
    """
    key_pem, cert_pem = GenerateSelfSignedX509Cert(common_name,
                                                   validity * 86400, serial_no,
                                                   key_type=key_type)
    _WritePem(filename, key_pem + cert_pem, mode, uid, gid)
    return key_pem, cert_pem


def GenerateSignedSslCert(filename_cert: str, serial_no: int,
                          filename_signing_cert: str,
                          common_name: str = constants.X509_CERT_CN,
                          validity: int = constants.X509_CERT_DEFAULT_VALIDITY,
                          uid: int = -1, gid: int = -1,
                          mode: int = constants.NODED_CLIENT_CERT_MODE,
                          ) -> tuple[bytes, bytes]:
    """Write a new key and a certificate signed by another one.

    ``validity`` is in days; the old file, if any, is backed up first.
    """
    with open(filename_signing_cert, "rb") as fd:
        signing_pem = fd.read()
    key_pem, cert_pem = GenerateSignedX509Cert(common_name, validity * 86400,
                                               serial_no, signing_pem)
    _WritePem(filename_cert, key_pem + cert_pem, mode, uid, gid, backup=True)
    return key_pem, cert_pem


def LoadX509Certificate(pem: str | bytes) -> cx509.Certificate:
    """Parse the first certificate in a PEM text (keys are skipped).

    Raises errors.X509CertError when there is none or it is malformed.
    """
    try:
        return cx509.load_pem_x509_certificate(_AsBytes(pem))
    except ValueError as err:
        raise errors.X509CertError("(in memory)",
                                   f"Cannot parse certificate: {err}") from err


def ExtractX509Certificate(pem: str | bytes) -> tuple[cx509.Certificate, bytes]:
    """Return the certificate in ``pem`` and its PEM encoding alone."""
    cert = LoadX509Certificate(pem)
    return cert, cert.public_bytes(serialization.Encoding.PEM)


def ReadCertificateFile(filename: str) -> cx509.Certificate:
    """Load the certificate from a PEM file (which may also hold a key)."""
    try:
        with open(filename, "rb") as fd:
            data = fd.read()
    except OSError as err:
        raise errors.X509CertError(filename,
                                   f"Cannot read certificate: {err}") from err
    try:
        return cx509.load_pem_x509_certificate(data)
    except ValueError as err:
        raise errors.X509CertError(filename,
                                   f"Cannot parse certificate: {err}") from err


def FormatDigest(raw: bytes) -> str:
    """Format a digest as OpenSSL prints fingerprints: ``AB:CD:...``."""
    return ":".join(f"{b:02X}" for b in raw)


def GetCertDigest(cert: cx509.Certificate, algorithm: str = "sha1") -> str:
    """Return the fingerprint of a certificate (over its DER encoding)."""
    der = cert.public_bytes(serialization.Encoding.DER)
    return FormatDigest(hashlib.new(algorithm, der).digest())


def GetCertificateDigest(cert_filename: str, algorithm: str = "sha1") -> str:
    """Return the fingerprint of the certificate in ``cert_filename``.

    SHA-1 by default, the digest Ganeti keeps in the configuration's map of
    master candidate certificates.
    """
    return GetCertDigest(ReadCertificateFile(cert_filename), algorithm)


def GetX509CertValidity(cert: cx509.Certificate) -> tuple[float, float]:
    """Return the validity period as (not_before, not_after) epoch seconds."""
    return (cert.not_valid_before_utc.timestamp(),
            cert.not_valid_after_utc.timestamp())


def VerifyX509Certificate(cert: cx509.Certificate, warn_days: int,
                          error_days: int,
                          now: float | None = None) -> tuple[int | None, str | None]:
    """Check a certificate's validity period.

    Returns ``(None, None)`` when it is fine, else ``(CERT_WARNING, msg)``
    when it expires within ``warn_days`` and ``(CERT_ERROR, msg)`` when it is
    not yet valid, has expired, or expires within ``error_days``.
    """
    if now is None:
        now = datetime.datetime.now(datetime.UTC).timestamp()
    not_before, not_after = GetX509CertValidity(cert)

    def _When(ts: float) -> str:
        return datetime.datetime.fromtimestamp(
            ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    if now < not_before:
        return CERT_ERROR, f"Certificate not yet valid (valid from {_When(not_before)})"
    if now > not_after:
        return CERT_ERROR, f"Certificate expired on {_When(not_after)}"
    remaining_days = (not_after - now) / 86400
    if remaining_days <= error_days:
        return CERT_ERROR, (f"Certificate expires in {int(remaining_days)} days"
                            f" ({_When(not_after)})")
    if remaining_days <= warn_days:
        return CERT_WARNING, (f"Certificate expires in {int(remaining_days)} days"
                              f" ({_When(not_after)})")
    return None, None


def VerifyCertificate(filename: str) -> tuple[str | None, str | None]:
    """Check the certificate in a file as cluster verify does.

    Returns ``(None, None)`` when it is fine, else a (CV_WARNING or CV_ERROR,
    message) pair naming the file.
    """
    try:
        cert = ReadCertificateFile(filename)
    except errors.X509CertError as err:
        return constants.CV_ERROR, f"Failed to load X509 certificate {filename}: {err.args[1]}"
    code, msg = VerifyX509Certificate(cert, constants.SSL_CERT_EXPIRATION_WARN,
                                      constants.SSL_CERT_EXPIRATION_ERROR)
    if code is None:
        return None, None
    cv_code = constants.CV_WARNING if code == CERT_WARNING else constants.CV_ERROR
    return cv_code, f"While verifying {filename}: {msg}"


def IsSignedBy(cert: cx509.Certificate, ca_cert: cx509.Certificate) -> bool:
    """Tell whether ``ca_cert``'s key (RSA or ECDSA) signed ``cert``."""
    if cert.issuer != ca_cert.subject:
        return False
    public_key = ca_cert.public_key()
    hash_alg = cert.signature_hash_algorithm
    if hash_alg is None:
        return False
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(cert.signature, cert.tbs_certificate_bytes,
                              padding.PKCS1v15(), hash_alg)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(cert.signature, cert.tbs_certificate_bytes,
                              ec.ECDSA(hash_alg))
        else:
            return False
    except Exception:  # cryptography raises InvalidSignature
        return False
    return True


def GetCommonName(cert: cx509.Certificate) -> str | None:
    """Return the subject's common name, or None if it has none."""
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


# --- certificates signed with a shared secret (moves between clusters) ----------------
# A signed certificate is its PEM text preceded by one RFC 822-like header
# line, ``X-Ganeti-Signature: <salt>/<hex HMAC-SHA1 of salt + PEM>``, and an
# empty line. The HMAC covers the certificate as re-encoded here, so that
# only the certificate itself (not its formatting) is signed.

_SALT_RE = re.compile(r"^[a-zA-Z0-9]+$")
_SIGNATURE_RE = re.compile(r"^%s:\s*(?P<salt>[a-zA-Z0-9]+)/(?P<sign>[a-zA-Z0-9]+)$"
                           % re.escape(constants.X509_CERT_SIGNATURE_HEADER), re.I)


def SignX509Certificate(cert_pem: str | bytes, key: str, salt: str) -> str:
    """Return the certificate in ``cert_pem`` with a signature header:
    an HMAC under ``key`` (the cluster domain secret) with ``salt``
    (letters and digits)."""
    from ganeti.utils import security
    if not isinstance(salt, str) or not _SALT_RE.match(salt):
        raise errors.GenericError(f"Invalid salt: {salt!r}")
    _, pem = ExtractX509Certificate(cert_pem)
    text = pem.decode("ascii")
    digest = security.Sha1Hmac(key, text, salt=salt)
    return f"{constants.X509_CERT_SIGNATURE_HEADER}: {salt}/{digest}\n\n{text}"


def _SignatureOf(signed_pem: str) -> tuple[str, str]:
    for line in signed_pem.splitlines():
        if line.startswith("---"):
            break
        match = _SIGNATURE_RE.match(line.strip())
        if match:
            return match.group("salt"), match.group("sign")
    raise errors.GenericError("X509 certificate signature is missing")


def LoadSignedX509Certificate(signed_pem: str | bytes,
                              key: str) -> tuple[cx509.Certificate, str]:
    """Check the signature header of ``signed_pem`` against ``key``;
    return the certificate and the salt.

    Raises errors.GenericError when the signature is missing or wrong,
    errors.X509CertError when the certificate cannot be parsed.
    """
    from ganeti.utils import security
    text = signed_pem.decode("ascii", "replace") if isinstance(signed_pem, bytes) \
        else signed_pem
    salt, signature = _SignatureOf(text)
    cert, pem = ExtractX509Certificate(text)
    if not security.VerifySha1Hmac(key, pem.decode("ascii"), signature, salt=salt):
        raise errors.GenericError("X509 certificate signature is invalid")
    return cert, salt
