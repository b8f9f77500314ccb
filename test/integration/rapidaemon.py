"""A real ganeti-rapi beside the integration fixture's master daemon.

Used by test_rapi.py and test/bench/rapi.py. :class:`RapiDaemon` writes
``rapi.pem`` (crypto_setup) and a users file into the master's node root,
starts ``daemons/ganeti-rapi -f -b 127.0.0.1 -p 0`` with the master's
environment, learns its port from ``--ready-file`` and stops it by pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ganeti import constants, crypto_setup
from ganeti.rapi import auth
from ganeti.rapi import client as rapi_client

REPO = Path(__file__).resolve().parents[2]
RAPI = REPO / "daemons" / "ganeti-rapi"
START_TIMEOUT = 30
STOP_TIMEOUT = 30

#: Users written by :meth:`RapiDaemon.WriteUsers`: name -> (password, options)
USERS = {
    "admin": ("adminpw", ["write"]),
    "reader": ("readerpw", ["read"]),
    "plain": ("plainpw", []),
}


class RapiDaemon:
    """A ganeti-rapi process serving the master whose root is ``root``."""

    def __init__(self, root: Path, env: dict[str, str], address: str = "127.0.0.1",
                 extra_args: tuple[str, ...] = (), python: str = sys.executable) -> None:
        self.root = root
        self.python = python
        self.env = dict(env)
        self.address = address
        self.extra_args = extra_args
        data_dir = root / constants.DEFAULT_DATA_DIR.lstrip("/")
        self.cert_file = data_dir / constants.RAPI_PEM_NAME
        self.users_file = data_dir / "rapi" / constants.RAPI_USERS_FILE_NAME
        self.ready_file = root / "rapi.ready"
        self.stderr_file = root / "rapi.stderr"
        self.log_file = root / constants.DEFAULT_LOG_DIR.lstrip("/") / "rapi-daemon.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def Prepare(self) -> RapiDaemon:
        """Write rapi.pem and the users file (admin/write, reader/read, plain)."""
        self.cert_file.parent.mkdir(parents=True, exist_ok=True)
        if not self.cert_file.exists():
            crypto_setup.GenerateRapiCert(str(self.cert_file))
        for name, (password, options) in USERS.items():
            # One clear-text entry shows both schemes work
            auth.WriteUserEntry(str(self.users_file), name, password, options,
                                hashed=(name != "plain"))
        return self

    @property
    def pid(self) -> int | None:
        """The daemon's pid while it runs."""
        return self.proc.pid if self.proc is not None else None

    def Start(self) -> RapiDaemon:
        """Start in the foreground and wait for the ready file."""
        if self.ready_file.exists():
            self.ready_file.unlink()
        # Foreground mode logs every request to stderr too: a file, not a
        # pipe nobody reads, which would fill up and block the daemon
        with open(self.stderr_file, "ab") as err:
            self.proc = subprocess.Popen(
                [self.python, str(RAPI), "-f", "-b", self.address, "-p", "0",
                 "--ready-file", str(self.ready_file), *self.extra_args],
                env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ready_file.exists():
            if self.proc.poll() is not None:
                err = self.stderr_file.read_text()[-2000:]
                raise AssertionError(f"ganeti-rapi exited with {self.proc.returncode}:"
                                     f" {err}")
            if time.monotonic() > deadline:
                self.Stop()
                raise AssertionError(f"ganeti-rapi not ready in {START_TIMEOUT}s")
            time.sleep(0.02)  # bounded poll for the ready file
        _, port, _ = self.ready_file.read_text().split()
        self.port = int(port)
        return self

    def Stop(self) -> int | None:
        """SIGTERM the daemon (SIGKILL after a timeout); returns its exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return proc.returncode

    def Client(self, user: str | None = "admin", **kwargs: object) -> rapi_client.GanetiRapiClient:
        """A client of this daemon, verifying its certificate."""
        password = USERS[user][0] if user else None
        return rapi_client.GanetiRapiClient(
            self.address, self.port, username=user, password=password,
            curl_config_fn=rapi_client.GenericCurlConfig(cafile=str(self.cert_file)),
            **kwargs)  # type: ignore[arg-type]

    def FdCount(self) -> int:
        """Open file descriptors of the daemon."""
        assert self.pid is not None
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def ThreadCount(self) -> int:
        """Threads of the daemon."""
        assert self.pid is not None
        with open(f"/proc/{self.pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
        raise AssertionError("no Threads line")
