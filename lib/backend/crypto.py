"""Per-move X.509 keys on the node (``x509_cert_create``, ``x509_cert_remove``).

Moves between clusters give each transfer daemon a key and certificate of
its own instead of the cluster's ``server.pem``: the other cluster must not
learn the cluster certificate. Each pair lives in a directory of
``CRYPTO_KEYS_DIR`` (``x509-<time>-<random>``) holding ``key`` and ``cert``;
the directory's name is the ``key_name`` of
:class:`ganeti.objects.ImportExportOptions`, as
:mod:`ganeti.backend.impexp` expects it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from typing import Any

from ganeti import constants, errors, pathutils, utils
from ganeti.backend import Fail
from ganeti.utils import x509

KEY_FILE = "key"
CERT_FILE = "cert"
#: Longest validity accepted (seconds): these keys serve one move
MAX_VALIDITY = 7 * 24 * 60 * 60

_NAME_RE = re.compile(r"^x509-[0-9]{14}-[A-Za-z0-9_]+$")


def _Directory(name: Any) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        Fail("Invalid X509 key name %r", name)
    return os.path.join(pathutils.CRYPTO_KEYS_DIR, name)


def CreateX509Certificate(validity: Any) -> tuple[str, str]:
    """Create a key and a self-signed certificate valid ``validity``
    seconds, named after this node; return (key name, certificate PEM)."""
    if not isinstance(validity, int) or isinstance(validity, bool) or \
            not 0 < validity <= MAX_VALIDITY:
        Fail("Invalid certificate validity %r: expected 1 to %d seconds", validity,
             MAX_VALIDITY)
    key_pem, cert_pem = x509.GenerateSelfSignedX509Cert(
        utils.Hostname.GetSysName(), validity, 1)
    try:
        os.makedirs(pathutils.CRYPTO_KEYS_DIR, mode=0o700, exist_ok=True)
        prefix = time.strftime("x509-%Y%m%d%H%M%S-", time.gmtime())
        directory = tempfile.mkdtemp(prefix=prefix, dir=pathutils.CRYPTO_KEYS_DIR)
    except OSError as err:
        Fail("Cannot create a key directory in %s: %s", pathutils.CRYPTO_KEYS_DIR, err)
    try:
        utils.WriteFile(os.path.join(directory, KEY_FILE), data=key_pem, mode=0o400)
        utils.WriteFile(os.path.join(directory, CERT_FILE), data=cert_pem, mode=0o400)
    except OSError as err:
        shutil.rmtree(directory, ignore_errors=True)
        Fail("Cannot write the X509 key and certificate: %s", err)
    return os.path.basename(directory), cert_pem.decode("ascii")


def RemoveX509Certificate(name: Any) -> None:
    """Remove the key and certificate ``name``; an unknown name fails."""
    directory = _Directory(name)
    if not os.path.isdir(directory):
        Fail("X509 key %s not found", name)
    for fname in (KEY_FILE, CERT_FILE):
        try:
            os.unlink(os.path.join(directory, fname))
        except FileNotFoundError:
            pass
        except OSError as err:
            Fail("Cannot remove %s of X509 key %s: %s", fname, name, err)
    try:
        os.rmdir(directory)
    except OSError as err:
        Fail("Cannot remove the certificate directory %s: %s", directory, err)


# --- The node's client certificate (``node_crypto_tokens``) ----------------------------

def _CreateClientCert(options: Any) -> None:
    from ganeti import crypto_setup
    if options is None:
        options = {}
    if not isinstance(options, dict):
        Fail("Invalid crypto token options %r", options)
    serial_no = options.get(constants.CRYPTO_OPTION_SERIAL_NO)
    if serial_no is not None and (not isinstance(serial_no, int)
                                  or isinstance(serial_no, bool) or serial_no <= 0):
        Fail("Invalid certificate serial number %r", serial_no)
    try:
        crypto_setup.GenerateNodeClientCert(
            pathutils.NODED_CLIENT_CERT_FILE, pathutils.NODED_CERT_FILE,
            utils.Hostname.GetSysName(), serial_no=serial_no)
    except (OSError, ValueError) as err:
        Fail("Cannot create a new client certificate signed by %s: %s",
             pathutils.NODED_CERT_FILE, err)


def GetCryptoTokens(token_requests: Any) -> list[tuple[str, str]]:
    """Answer ``node_crypto_tokens``: per request (type, action, options),
    the token's value.

    The only type is the digest of this node's client certificate
    (``client.pem``); with the "create" action a new client certificate is
    made first, signed by this node's cluster certificate (``server.pem``),
    so that its key never leaves the node.
    """
    if not isinstance(token_requests, list):
        Fail("Invalid crypto token requests %r", token_requests)
    result = []
    for request in token_requests:
        try:
            token_type, action, options = request
        except (TypeError, ValueError):
            Fail("Invalid crypto token request %r", request)
        if token_type not in constants.CRYPTO_TYPES:
            Fail("Unknown crypto token type %r", token_type)
        if action not in constants.CRYPTO_ACTIONS:
            Fail("Unknown crypto token action %r", action)
        if action == constants.CRYPTO_ACTION_CREATE:
            _CreateClientCert(options)
        try:
            digest = x509.GetCertificateDigest(pathutils.NODED_CLIENT_CERT_FILE)
        except errors.X509CertError as err:
            Fail("Cannot read the client certificate %s: %s",
                 pathutils.NODED_CLIENT_CERT_FILE, err)
        result.append((token_type, digest))
    return result
