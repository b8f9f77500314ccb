"""The cluster's certificates, keys and secrets.

At cluster init (and on ``gnt-cluster renew-crypto``) the master creates:

============================  =====================================  ======
file                          what                                   mode
============================  =====================================  ======
``server.pem``                cluster certificate + key, self-signed  0440
``client.pem``                this node's client certificate + key,   0440
                              signed by the cluster certificate
``rapi.pem``                  RAPI certificate + key (ECDSA),         0440
                              self-signed
``hmac.key``                  confd HMAC key (hex)                    0440
``cluster-domain-secret``     secret shared with other clusters      0640
``spice.pem``                 SPICE certificate + key                 0440
``spice-ca.pem``              the CA certificate of spice.pem (itself 0440
                              when self-signed)
============================  =====================================  ======

Under privilege separation each file belongs to the daemon user that reads
it (:data:`CRYPTO_FILES`, :mod:`ganeti.runtime`); a virtual cluster runs
everything as one user, so ownership is left alone there.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from ganeti import constants, runtime, utils
from ganeti.utils import x509


@dataclass(frozen=True)
class CryptoFile:
    """Who owns a crypto file and with which mode it is written.

    ``user`` and ``group`` are roles: the attribute names of
    :class:`ganeti.runtime.Names`/:class:`~ganeti.runtime.Ents` without
    their suffix (``masterd``, ``confd``, ``rapi``).
    """
    mode: int
    user: str
    group: str


#: The owner and mode of every crypto file, by its file name constant (the
#: same as ensure-dirs sets: the master daemon reads every file it
#: redistributes, hence its group on confd's and RAPI's)
CRYPTO_FILES: dict[str, CryptoFile] = {
    constants.SERVER_PEM_NAME: CryptoFile(constants.NODED_CERT_MODE,
                                          "masterd", "masterd"),
    constants.CLIENT_PEM_NAME: CryptoFile(constants.NODED_CLIENT_CERT_MODE,
                                          "masterd", "masterd"),
    constants.RAPI_PEM_NAME: CryptoFile(constants.RAPI_CERT_MODE, "rapi", "masterd"),
    constants.CONFD_HMAC_KEY_NAME: CryptoFile(constants.CONFD_HMAC_KEY_MODE,
                                              "confd", "masterd"),
    constants.CLUSTER_DOMAIN_SECRET_NAME: CryptoFile(
        constants.CLUSTER_DOMAIN_SECRET_MODE, "masterd", "masterd"),
    constants.SPICE_CERT_NAME: CryptoFile(0o440, "masterd", "masterd"),
    constants.SPICE_CACERT_NAME: CryptoFile(0o440, "masterd", "masterd"),
}


def GetOwner(name: str) -> tuple[int, int]:
    """Return (uid, gid) for a crypto file; -1 where ownership is left as it
    is (see :func:`ganeti.runtime.FileOwnerIds`)."""
    spec = CRYPTO_FILES[name]
    return runtime.FileOwnerIds(spec.user, spec.group)


def _Write(filename: str, name: str, data: str | bytes) -> None:
    uid, gid = GetOwner(name)
    utils.WriteFile(filename, data=data, mode=CRYPTO_FILES[name].mode,
                    uid=uid, gid=gid, backup=True)


def _Backup(filename: str) -> None:
    if os.path.isfile(filename):
        utils.CreateBackup(filename)


def GenerateHmacKey(file_name: str,
                    name: str = constants.CONFD_HMAC_KEY_NAME) -> None:
    """Write a new HMAC key (hex, one line) to ``file_name``."""
    _Write(file_name, name, utils.GenerateSecret(constants.HMAC_KEY_BYTES) + "\n")


def GenerateClusterCert(filename: str) -> None:
    """Write a new self-signed cluster certificate and key (server.pem)."""
    _Backup(filename)
    uid, gid = GetOwner(constants.SERVER_PEM_NAME)
    x509.GenerateSelfSignedSslCert(filename, 1, uid=uid, gid=gid,
                                   mode=CRYPTO_FILES[constants.SERVER_PEM_NAME].mode)


def GenerateNodeClientCert(filename: str, signing_cert_file: str,
                           node_name: str, serial_no: int | None = None) -> None:
    """Write a node's client certificate (client.pem), signed by server.pem.

    The node's name is the common name; the serial number defaults to the
    creation time, so that renewed certificates can be told apart.
    """
    uid, gid = GetOwner(constants.CLIENT_PEM_NAME)
    if serial_no is None:
        serial_no = int(time.time())
    x509.GenerateSignedSslCert(filename, serial_no, signing_cert_file,
                               common_name=node_name, uid=uid, gid=gid,
                               mode=CRYPTO_FILES[constants.CLIENT_PEM_NAME].mode)


def GenerateRapiCert(filename: str) -> None:
    """Write a new self-signed RAPI certificate and key (rapi.pem).

    Unlike Ganeti (RSA), the key is ECDSA P-256: RAPI clients open a new
    TLS connection per request and the server's side of a handshake with
    an ECDSA key costs a fraction of an RSA-2048 one. Every TLS client
    Ganeti users have (curl, pycurl, requests, Go) accepts it; a
    user-supplied RSA ``rapi.pem`` keeps working.
    """
    _Backup(filename)
    uid, gid = GetOwner(constants.RAPI_PEM_NAME)
    x509.GenerateSelfSignedSslCert(filename, 1, uid=uid, gid=gid,
                                   mode=CRYPTO_FILES[constants.RAPI_PEM_NAME].mode,
                                   key_type=x509.KEY_TYPE_ECDSA)


def GenerateSpiceCert(cert_file: str, cacert_file: str) -> None:
    """Write a new self-signed SPICE certificate and key (spice.pem); being
    self-signed, its certificate is also the CA certificate (spice-ca.pem)."""
    _Backup(cert_file)
    _Backup(cacert_file)
    uid, gid = GetOwner(constants.SPICE_CERT_NAME)
    _, cert_pem = x509.GenerateSelfSignedSslCert(
        cert_file, 1, uid=uid, gid=gid,
        mode=CRYPTO_FILES[constants.SPICE_CERT_NAME].mode)
    _Write(cacert_file, constants.SPICE_CACERT_NAME, cert_pem)


def InstallSpiceCert(cert_file: str, cacert_file: str, cert_pem: str,
                     cacert_pem: str) -> None:
    """Install a given SPICE certificate (with its key) and its CA's."""
    _Write(cert_file, constants.SPICE_CERT_NAME, cert_pem)
    _Write(cacert_file, constants.SPICE_CACERT_NAME, cacert_pem)


def _DefaultPaths() -> dict[str, str]:
    from ganeti import pathutils
    return {
        "nodecert_file": pathutils.NODED_CERT_FILE,
        "clientcert_file": pathutils.NODED_CLIENT_CERT_FILE,
        "rapicert_file": pathutils.RAPI_CERT_FILE,
        "hmackey_file": pathutils.CONFD_HMAC_KEY,
        "cds_file": pathutils.CLUSTER_DOMAIN_SECRET_FILE,
    }


def GenerateClusterCrypto(new_cluster_cert: bool, new_rapi_cert: bool,
                          new_confd_hmac_key: bool, new_cds: bool = False,
                          new_client_cert: bool = False,
                          master_name: str | None = None,
                          rapi_cert_pem: str | None = None,
                          cds: str | None = None,
                          nodecert_file: str | None = None,
                          clientcert_file: str | None = None,
                          rapicert_file: str | None = None,
                          hmackey_file: str | None = None,
                          cds_file: str | None = None) -> None:
    """Create or renew the cluster's certificates, keys and secrets.

    A file is (re)generated when its ``new_*`` flag is set or when it does not
    exist yet; existing files are backed up first. A given ``rapi_cert_pem``
    (key and certificate) or ``cds`` is installed instead of generating one.
    The client certificate is renewed whenever the cluster certificate is,
    since the cluster certificate signs it; it needs ``master_name``.
    File paths default to the standard ones under ``GANETI_ROOTDIR``.
    """
    explicit = {"nodecert_file": nodecert_file, "clientcert_file": clientcert_file,
                "rapicert_file": rapicert_file, "hmackey_file": hmackey_file,
                "cds_file": cds_file}
    if any(value is None for value in explicit.values()):
        paths = _DefaultPaths()
        paths.update({k: v for k, v in explicit.items() if v is not None})
    else:
        paths = {k: v for k, v in explicit.items() if v is not None}

    node_cert = paths["nodecert_file"]
    cluster_cert_renewed = new_cluster_cert or not os.path.exists(node_cert)
    if cluster_cert_renewed:
        logging.debug("Generating new cluster certificate at %s", node_cert)
        GenerateClusterCert(node_cert)

    client_cert = paths["clientcert_file"]
    if cluster_cert_renewed or new_client_cert or not os.path.exists(client_cert):
        if master_name:
            logging.debug("Generating new client certificate at %s", client_cert)
            GenerateNodeClientCert(client_cert, node_cert, master_name)
        else:
            logging.debug("No node name given, not creating %s", client_cert)

    hmac_key = paths["hmackey_file"]
    if new_confd_hmac_key or not os.path.exists(hmac_key):
        logging.debug("Writing new confd HMAC key to %s", hmac_key)
        GenerateHmacKey(hmac_key)

    rapi_cert = paths["rapicert_file"]
    if rapi_cert_pem:
        logging.debug("Installing the given RAPI certificate at %s", rapi_cert)
        _Write(rapi_cert, constants.RAPI_PEM_NAME, rapi_cert_pem)
    elif new_rapi_cert or not os.path.exists(rapi_cert):
        logging.debug("Generating new RAPI certificate at %s", rapi_cert)
        GenerateRapiCert(rapi_cert)

    cds_path = paths["cds_file"]
    if cds:
        logging.debug("Installing the given cluster domain secret at %s", cds_path)
        _Write(cds_path, constants.CLUSTER_DOMAIN_SECRET_NAME, cds)
    elif new_cds or not os.path.exists(cds_path):
        logging.debug("Generating new cluster domain secret at %s", cds_path)
        GenerateHmacKey(cds_path, name=constants.CLUSTER_DOMAIN_SECRET_NAME)
