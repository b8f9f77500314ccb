"""Remote import/export (moves between clusters): the signed messages.

Two clusters that share a *cluster domain secret* (``gnt-cluster
renew-crypto --cluster-domain-secret=FILE``) trust what the other signed
with it, whoever carries the message (``move-instance``, through RAPI).
Every signature is a hex HMAC-SHA1 under the secret of a random salt
followed by the signed text; messages carry the salt with them.

- handshake ``[version, hmac, salt]`` over ``"<version>:Hi, I'm Ganeti"``:
  the source's proof that it holds the secret (checked by the
  destination's remote import);
- key name ``[name, hmac, salt]`` over the name of the X509 key the source
  created for the move (checked by the source's own export, so that only
  names it handed out are used);
- CA: the certificate of a per-move key, with an ``X-Ganeti-Signature``
  header (:func:`ganeti.utils.x509.SignX509Certificate`);
- disk destination ``[host, port, magic, hmac, salt]`` over
  ``"<disk index>:<host>:<port>:<magic>"``: where the destination's
  importer of that disk listens.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from cryptography import x509 as cx509

from ganeti import constants, errors, pathutils, utils
from ganeti.utils import x509

_HOST_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$")


def ReadDomainSecret() -> str:
    """The cluster domain secret (OpPrereqError when it cannot be read)."""
    try:
        return utils.ReadOneLineFile(pathutils.CLUSTER_DOMAIN_SECRET_FILE, strict=True)
    except (OSError, errors.GenericError) as err:
        raise errors.OpPrereqError(
            f"Cannot read the cluster domain secret {pathutils.CLUSTER_DOMAIN_SECRET_FILE}"
            f" ({err}); create one with gnt-cluster renew-crypto"
            " --new-cluster-domain-secret", errors.ECODE_ENVIRON) from None


def _Salt() -> str:
    return utils.GenerateSecret(8)


def _HandshakeText(version: Any) -> str:
    return f"{version}:{constants.RIE_HANDSHAKE}"


def ComputeHandshake(cds: str) -> list[Any]:
    """The handshake a source hands out with its prepared export."""
    salt = _Salt()
    return [constants.RIE_VERSION,
            utils.Sha1Hmac(cds, _HandshakeText(constants.RIE_VERSION), salt=salt), salt]


def CheckHandshake(cds: str, handshake: Any) -> str | None:
    """Why ``handshake`` is not acceptable, or None when it is."""
    if not isinstance(handshake, (list, tuple)) or len(handshake) != 3:
        return f"Invalid handshake {handshake!r}: expected [version, hmac, salt]"
    version, digest, salt = handshake
    if not isinstance(salt, str) or not utils.VerifySha1Hmac(
            cds, _HandshakeText(version), digest, salt=salt):
        return "Hash didn't match, clusters don't share the same domain secret"
    if version != constants.RIE_VERSION:
        return ("Clusters don't have the same remote import/export protocol"
                f" (local={constants.RIE_VERSION}, remote={version})")
    return None


def SignKeyName(cds: str, name: str) -> list[str]:
    """``[name, hmac, salt]`` for a key name handed out to a third party."""
    salt = _Salt()
    return [name, utils.Sha1Hmac(cds, name, salt=salt), salt]


def CheckKeyName(cds: str, value: Any) -> str:
    """The key name in a signed ``[name, hmac, salt]``; GenericError when
    it is malformed or its signature is wrong."""
    if not isinstance(value, (list, tuple)) or len(value) != 3 or \
            not all(isinstance(part, str) for part in value):
        raise errors.GenericError(f"Invalid X509 key name {value!r}: expected"
                                  " [name, hmac, salt]")
    name, digest, salt = value
    if not utils.VerifySha1Hmac(cds, name, digest, salt=salt):
        raise errors.GenericError("HMAC for X509 key name is wrong")
    return name


def SignCertificate(cds: str, cert_pem: str) -> str:
    """The certificate PEM with a signature header under ``cds``."""
    return x509.SignX509Certificate(cert_pem, cds, _Salt())


def CheckSignedCertificate(cds: str, signed_pem: Any, what: str) -> str:
    """The plain PEM of a signed certificate that is valid now;
    OpPrereqError naming ``what`` otherwise."""
    if not isinstance(signed_pem, str) or not signed_pem:
        raise errors.OpPrereqError(f"Missing {what}", errors.ECODE_INVAL)
    try:
        cert, _ = x509.LoadSignedX509Certificate(signed_pem, cds)
    except errors.GenericError as err:
        raise errors.OpPrereqError(f"Unable to load {what}: {err}",
                                   errors.ECODE_INVAL) from None
    code, msg = x509.VerifyX509Certificate(cert, 0, 0)
    if code == x509.CERT_ERROR:
        raise errors.OpPrereqError(f"Invalid {what} ({msg})", errors.ECODE_INVAL)
    return _Pem(cert)


def _Pem(cert: cx509.Certificate) -> str:
    from cryptography.hazmat.primitives import serialization
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _DiskText(idx: int, host: str, port: Any, magic: str) -> str:
    return f"{idx}:{host}:{port}:{magic}"


def ComputeDiskInfo(cds: str, salt: str, idx: int, host: str, port: int,
                    magic: str) -> list[Any]:
    """The signed destination of disk ``idx``: [host, port, magic, hmac, salt]."""
    return [host, port, magic,
            utils.Sha1Hmac(cds, _DiskText(idx, host, port, magic), salt=salt), salt]


def CheckDiskInfo(cds: str, idx: int, info: Any) -> tuple[str, int, str]:
    """(host, port, magic) of a signed disk destination; GenericError when
    it is malformed or its signature is wrong."""
    if not isinstance(info, (list, tuple)) or len(info) != 5:
        raise errors.GenericError(f"Invalid data {info!r}: expected [host, port,"
                                  " magic, hmac, salt]")
    host, port, magic, digest, salt = info
    if not (host and port and magic):
        raise errors.GenericError("Missing destination host, port or magic")
    if not isinstance(salt, str) or not utils.VerifySha1Hmac(
            cds, _DiskText(idx, host, port, magic), digest, salt=salt):
        raise errors.GenericError("HMAC is wrong")
    # Signed, hence ours; still, these go to a command line
    if not isinstance(host, str) or not _ValidHost(host):
        raise errors.GenericError(f"Invalid destination host {host!r}")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise errors.GenericError(f"Invalid destination port {port!r}")
    if not isinstance(magic, str) or not re.match(constants.IE_MAGIC_RE, magic):
        raise errors.GenericError(f"Invalid magic {magic!r}")
    return host, port, magic


def _ValidHost(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOST_RE.match(host))


def CreateCertificate(lu: Any, node_uuid: str) -> tuple[str, str]:
    """A new per-move key and certificate on a node: (key name, PEM)."""
    result = lu.rpc.call_x509_cert_create(node_uuid, constants.RIE_CERT_VALIDITY)
    result.Raise(f"Can't create X509 key and certificate on"
                 f" {lu.cfg.GetNodeName(node_uuid)}")
    name, pem = result.payload
    return name, pem


def RemoveCertificate(lu: Any, node_uuid: str, name: str) -> None:
    """Remove a per-move key from a node; a failure is a warning."""
    result = lu.rpc.call_x509_cert_remove(node_uuid, name)
    if result.fail_msg:
        lu.LogWarning(f"Can't remove X509 key and certificate {name} on"
                      f" {lu.cfg.GetNodeName(node_uuid)}: {result.fail_msg}")
