"""A real sshd on a loopback port, for tests of SSH clients.

Debian's ``/usr/sbin/sshd`` runs in the foreground on a free port of
127.0.0.1 with a temporary ed25519 host key and one authorized key for
root (the tests run as root); it is stopped by its pid. The tests wait for
it by polling its port with a deadline, never for a fixed time.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from ganeti import utils

SSHD = "/usr/sbin/sshd"
START_TIMEOUT = 30


def FreePort(address: str) -> int:
    """A TCP port free on ``address`` right now."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def KeyGen(path: str) -> None:
    """Make an ed25519 key pair without passphrase at ``path``(.pub)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path],
                   check=True, stdin=subprocess.DEVNULL)


class Sshd:
    """A running sshd on 127.0.0.1:port accepting one key for root."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        self.host_key = os.path.join(directory, "host_key")
        self.user_key = os.path.join(directory, "user_key")
        KeyGen(self.host_key)
        KeyGen(self.user_key)
        self.authorized = os.path.join(directory, "authorized_keys")
        shutil.copyfile(self.user_key + ".pub", self.authorized)
        self.pidfile = os.path.join(directory, "sshd.pid")
        self.port = FreePort("127.0.0.1")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.log = open(os.path.join(directory, "sshd.log"), "wb")
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", "/dev/null", "-p", str(self.port),
             "-h", self.host_key,
             "-o", "ListenAddress=127.0.0.1",
             "-o", f"AuthorizedKeysFile={self.authorized}",
             "-o", f"PidFile={self.pidfile}",
             "-o", "PermitRootLogin=prohibit-password",
             "-o", "PasswordAuthentication=no",
             "-o", "StrictModes=no", "-o", "UsePAM=no",
             "-o", "Subsystem=sftp internal-sftp"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        self._Wait()

    def _Wait(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not self._Listening():
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for sshd to listen")
            time.sleep(0.05)  # bounded poll: nothing to wait on

    def _Listening(self) -> bool:
        if self.proc.poll() is not None:
            with open(self.log.name, encoding="utf-8", errors="replace") as fd:
                raise AssertionError(f"sshd exited: {fd.read()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def HostKeyLine(self, *names: str) -> str:
        """A known_hosts line giving this sshd's host key for ``names``
        (default: ``[127.0.0.1]:port``)."""
        with open(self.host_key + ".pub", encoding="ascii") as fd:
            kind, key = fd.read().split()[:2]
        hosts = ",".join(names) if names else f"[127.0.0.1]:{self.port}"
        return f"{hosts} {kind} {key}\n"

    def KnownHosts(self, path: str, *names: str) -> str:
        """Write a known_hosts file at ``path`` with :meth:`HostKeyLine`."""
        utils.WriteFile(path, data=self.HostKeyLine(*names))
        return path

    def Stop(self) -> None:
        """Stop sshd by its pid."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(15)
        self.log.close()


def StartSshd(directory: str) -> Sshd:
    """Start an sshd keeping its files in ``directory`` (created); skip the
    test when sshd is missing or we are not root."""
    if not os.path.exists(SSHD):
        pytest.skip("openssh-server is not installed (see debian-packages.txt)")
    if os.getuid() != 0:
        pytest.skip("sshd must run as root")
    os.makedirs(directory)
    return Sshd(directory)
