"""The cluster's SSH keys: root's key pair on every node.

Ganeti logs in as root between nodes with root's own key pair
(``/root/.ssh/id_<type>``); every node authorizes the public keys of the
master candidates, and the master candidates keep the public keys of all
nodes in ``ganeti_pub_keys`` (``pathutils.SSH_PUB_KEYS``, lines of
"node-UUID key"). The key type and size are the cluster's
``ssh_key_type``/``ssh_key_bits`` (``gnt-cluster init --ssh-key-type``,
``renew-crypto --new-ssh-keys``). None of this happens when the cluster
does not modify the SSH setup (``gnt-cluster init --no-ssh-init``).

In a virtual cluster root's directory lies below each node's root
(``<node root>/root/.ssh``), like every other node path.

:func:`SetupMasterKeys` runs at cluster init, on the master itself.
:func:`RenewKeys` renews the keys of all online nodes through a runner of
:mod:`ganeti.ssh` (commands over SSH as root, or in the node roots of a
virtual cluster), in an order that never locks the master out:

1. every node makes a new key pair beside its current one (``.new``);
2. every node authorizes the candidates' new keys besides the old ones;
3. every node switches to its new key pair, the master last;
4. every node drops the old keys from its ``authorized_keys``;

then the master writes ``ganeti_pub_keys`` and copies it to the other
candidates.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ganeti import constants, errors, pathutils, utils

#: Root's SSH directory on a node (below the node root in a virtual cluster)
ROOT_SSH_DIR = "/root/.ssh"
#: The default size of each key type (ssh-keygen's choices, as Ganeti's)
DEFAULT_KEY_BITS = {constants.SSHK_RSA: 2048, constants.SSHK_DSA: 1024,
                    constants.SSHK_ECDSA: 384}
_ECDSA_BITS = (256, 384, 521)
_RSA_MIN_BITS = 768
#: Seconds ssh-keygen may take (large RSA keys take a while)
KEYGEN_TIMEOUT = 120


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def DetermineKeyBits(key_type: str, key_bits: int | None,
                     old_type: str | None = None, old_bits: int | None = None) -> int:
    """The key size to use: the given one, else the current one when the
    type stays, else the type's default; checked against what ssh-keygen
    accepts for the type.

    @raise errors.OpPrereqError: for an unknown type or a bad size
    """
    if key_type not in constants.SSHK_ALL:
        raise _Inval(f"Invalid SSH key type '{key_type}' (valid:"
                     f" {', '.join(sorted(constants.SSHK_ALL))})")
    if key_bits is None:
        key_bits = old_bits if old_type == key_type and old_bits else \
            DEFAULT_KEY_BITS[key_type]
    if key_type == constants.SSHK_DSA and key_bits != 1024:
        raise _Inval(f"DSA SSH keys must have 1024 bits, not {key_bits}")
    if key_type == constants.SSHK_ECDSA and key_bits not in _ECDSA_BITS:
        raise _Inval(f"ECDSA SSH keys must have 256, 384 or 521 bits, not {key_bits}")
    if key_type == constants.SSHK_RSA and key_bits < _RSA_MIN_BITS:
        raise _Inval(f"RSA SSH keys must have at least {_RSA_MIN_BITS} bits, not"
                     f" {key_bits}")
    return key_bits


def KeyFileName(key_type: str) -> str:
    """The private key's file name for ``key_type`` (``id_rsa``, ...)."""
    return f"id_{key_type}"


def LocalSshDir() -> str:
    """Root's SSH directory of this node (below its root in a virtual cluster)."""
    return pathutils.AddNodePrefix(ROOT_SSH_DIR)


def KeyOf(line: str) -> str | None:
    """The "type base64" part of a public key or authorized_keys line."""
    fields = line.split()
    for idx, field in enumerate(fields[:-1]):
        if field.startswith(("ssh-", "ecdsa-", "sk-")):
            return f"{field} {fields[idx + 1]}"
    return None


def MergeAuthorizedKeys(text: str, add: Iterable[str], remove: Iterable[str]) -> str:
    """``authorized_keys`` contents with keys added and removed; other lines
    (the administrator's) stay as they are."""
    gone = {KeyOf(key) for key in remove} - {None}
    lines = [line for line in text.splitlines() if KeyOf(line) not in gone]
    present = {KeyOf(line) for line in lines}
    for key in add:
        if KeyOf(key) not in present:
            lines.append(key.strip())
            present.add(KeyOf(key))
    return "".join(f"{line}\n" for line in lines)


def FormatPubKeyFile(keys: Mapping[str, Iterable[str]]) -> str:
    """``ganeti_pub_keys`` contents: one "node-UUID key" line per key."""
    return "".join(f"{uuid} {key.strip()}\n" for uuid in sorted(keys)
                   for key in keys[uuid])


def ParsePubKeyFile(text: str) -> dict[str, list[str]]:
    """``ganeti_pub_keys`` contents as {node UUID: [keys]}."""
    result: dict[str, list[str]] = {}
    for line in text.splitlines():
        uuid, _, key = line.strip().partition(" ")
        if uuid and key:
            result.setdefault(uuid, []).append(key.strip())
    return result


def ReadPubKeyFile(path: str | None = None) -> dict[str, list[str]]:
    """The keys of ``ganeti_pub_keys`` (none when the file is missing)."""
    try:
        return ParsePubKeyFile(utils.ReadFile(path or pathutils.SSH_PUB_KEYS))
    except FileNotFoundError:
        return {}


def GenerateKeyPair(key_type: str, key_bits: int, path: str, comment: str) -> str:
    """Make a key pair without passphrase at ``path`` (and ``path``.pub),
    replacing any; return the public key.

    @raise errors.OpExecError: with ssh-keygen's message
    """
    for name in (path, path + ".pub"):
        utils.RemoveFile(name)
    cmd = ["ssh-keygen", "-q", "-t", key_type, "-b", str(key_bits), "-N", "",
           "-C", comment, "-f", path]
    result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=KEYGEN_TIMEOUT, check=False)
    if result.returncode != 0:
        raise errors.OpExecError(
            f"Cannot create a {key_type} SSH key of {key_bits} bits: "
            + (result.stdout + result.stderr).decode("utf-8", "replace").strip())
    return utils.ReadFile(path + ".pub").strip()


def SetupMasterKeys(master_uuid: str, master_name: str, key_type: str, key_bits: int,
                    ssh_dir: str | None = None, pub_key_file: str | None = None) -> str:
    """At cluster init: a new key pair for root on this node (existing files
    backed up), authorized for root here, and the first ``ganeti_pub_keys``.
    Returns the public key."""
    ssh_dir = ssh_dir or LocalSshDir()
    os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
    path = os.path.join(ssh_dir, KeyFileName(key_type))
    for name in (path, path + ".pub"):
        if os.path.exists(name):
            utils.CreateBackup(name)
    pub = GenerateKeyPair(key_type, key_bits, path, f"root@{master_name}")
    auth = os.path.join(ssh_dir, "authorized_keys")
    current = utils.ReadFile(auth) if os.path.exists(auth) else ""
    utils.WriteFile(auth, data=MergeAuthorizedKeys(current, [pub], []), mode=0o600)
    utils.WriteFile(pub_key_file or pathutils.SSH_PUB_KEYS,
                    data=FormatPubKeyFile({master_uuid: [pub]}), mode=0o600)
    return pub


# --- Renewal on all nodes, through a runner -------------------------------------------------

@dataclass(frozen=True)
class KeyNode:
    """A node whose key is renewed: its SSH target, UUID and roles."""

    target: Any
    uuid: str
    master_candidate: bool
    master: bool = False


#: Root's SSH directory as the node's shell sees it (a virtual node's
#: commands run with GANETI_ROOTDIR set; on a real node it is empty)
_SHELL_SSH_DIR = '"${GANETI_ROOTDIR:-}' + ROOT_SSH_DIR + '"'


def _Run(runner: Any, node: KeyNode, command: str, what: str) -> str:
    result = runner.Run(node.target, command)
    if result.exit_code != 0:
        raise errors.OpExecError(f"Cannot {what} on {node.target.name} (exit code"
                                 f" {result.exit_code}): {result.output.strip()}")
    return result.output


def _NewKeyCommand(key_type: str, key_bits: int, name: str) -> str:
    new = f"{_SHELL_SSH_DIR}/{KeyFileName(key_type)}.new"
    return (f"umask 077 && mkdir -p {_SHELL_SSH_DIR} && rm -f {new} {new}.pub && "
            f"ssh-keygen -q -t {key_type} -b {key_bits} -N '' "
            f"-C {shlex.quote('root@' + name)} -f {new} </dev/null && cat {new}.pub")


def _SwitchCommand(key_type: str, old_type: str | None) -> str:
    path = f"{_SHELL_SSH_DIR}/{KeyFileName(key_type)}"
    parts = [f"mv -f {path}.new {path}", f"mv -f {path}.new.pub {path}.pub"]
    if old_type and old_type != key_type:
        old = f"{_SHELL_SSH_DIR}/{KeyFileName(old_type)}"
        parts.append(f"rm -f {old} {old}.pub")
    return " && ".join(parts)


def _AuthKeysPath() -> str:
    return f"{_SHELL_SSH_DIR}/authorized_keys"


def _UpdateAuthorizedKeys(runner: Any, node: KeyNode, add: list[str],
                          remove: list[str]) -> None:
    current = _Run(runner, node, f"cat {_AuthKeysPath()} 2>/dev/null || true",
                   "read authorized_keys")
    new = MergeAuthorizedKeys(current, add, remove)
    tmp = f"{_SHELL_SSH_DIR}/.authorized_keys.gnt-new"
    _Run(runner, node,
         f"umask 077 && mkdir -p {_SHELL_SSH_DIR} && printf %s {shlex.quote(new)}"
         f" > {tmp} && mv -f {tmp} {_AuthKeysPath()}", "write authorized_keys")


def RenewKeys(runner: Any, nodes: list[KeyNode], key_type: str, key_bits: int,
              old_type: str | None, old_keys: Mapping[str, list[str]],
              feedback_fn: Callable[[str], None] = lambda _: None
              ) -> dict[str, list[str]]:
    """Renew root's key pair on ``nodes`` (the online ones, master
    included) and authorize the candidates' new keys everywhere, removing
    ``old_keys`` (the current ``ganeti_pub_keys``). Returns the new
    ``{node UUID: [public key]}``.

    @raise errors.OpExecError: when a step fails on a node (before the
        switch every node still has its old, authorized key)
    """
    ordered = [n for n in nodes if not n.master] + [n for n in nodes if n.master]
    new_keys: dict[str, list[str]] = {}
    for node in ordered:
        feedback_fn(f"Creating a new {key_type} SSH key ({key_bits} bits) on"
                    f" {node.target.name}")
        out = _Run(runner, node, _NewKeyCommand(key_type, key_bits, node.target.name),
                   "create a new SSH key")
        keys = [line.strip() for line in out.splitlines() if KeyOf(line)]
        if len(keys) != 1:
            raise errors.OpExecError(f"Unexpected public key from {node.target.name}:"
                                     f" {out.strip()[:200]!r}")
        new_keys[node.uuid] = keys
    authorized = [key for n in ordered if n.master_candidate for key in new_keys[n.uuid]]
    stale = [key for keys in old_keys.values() for key in keys]
    for node in ordered:
        _UpdateAuthorizedKeys(runner, node, authorized, [])
    for node in ordered:
        feedback_fn(f"Switching {node.target.name} to its new SSH key")
        _Run(runner, node, _SwitchCommand(key_type, old_type), "switch SSH keys")
    for node in ordered:
        _UpdateAuthorizedKeys(runner, node, authorized,
                              [key for key in stale if key not in authorized])
    return new_keys


def WritePubKeyFile(keys: Mapping[str, list[str]], runner: Any,
                    candidates: list[KeyNode], path: str | None = None) -> list[str]:
    """Write ``ganeti_pub_keys`` here and copy it to the other candidates;
    return the failures as messages."""
    path = path or pathutils.SSH_PUB_KEYS
    utils.WriteFile(path, data=FormatPubKeyFile(keys), mode=0o600)
    failures = []
    for node in candidates:
        if node.master:
            continue
        try:
            runner.CopyFile(node.target, path)
        except errors.GenericError as err:
            failures.append(f"{node.target.name}: {err}")
    return failures


def ProbeHostKeys(targets: Iterable[Any], known_hosts_file: str | None = None) -> list[str]:
    """Connect once to each target accepting an unknown host key and
    recording it (``--no-ssh-key-check``); return the failures."""
    from ganeti import ssh
    failures = []
    for target in targets:
        try:
            ssh.Connect(target.address, target.port, known_hosts_file=known_hosts_file,
                        strict=False).close()
        except errors.GenericError as err:
            failures.append(f"{target.name}: {err}")
    return failures
