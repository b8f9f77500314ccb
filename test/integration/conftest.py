"""The shared fixture of the integration tests: a real ganeti-masterd.

``master`` gives a :class:`Master`: a temporary node root (GANETI_ROOTDIR)
holding a one-node cluster configuration, and ``daemons/ganeti-masterd -f``
running as a subprocess with that environment. Tests talk to it with
``master.luxi_client()`` or run tools with ``master.env``; they may stop
and restart it (``master.stop()``, ``master.kill()``, ``master.start()``).
Every daemon started here is stopped by its pid at teardown.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ganeti import constants, objects
from ganeti.config import base as config_base
from ganeti.luxi import client as luxi_client
from ganeti.luxi import protocol

REPO = Path(__file__).resolve().parents[2]
MASTERD = REPO / "daemons" / "ganeti-masterd"
MASTER_NAME = "node1.example.com"
START_TIMEOUT = 30
STOP_TIMEOUT = 60


def _NodePath(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def _WriteClusterConfig(root: Path) -> Path:
    """A minimal one-node cluster configuration under ``root``."""
    cfg_file = _NodePath(root, constants.DEFAULT_DATA_DIR) / \
        constants.CLUSTER_CONF_FILE_NAME
    cfg_file.parent.mkdir(parents=True, exist_ok=True)
    cluster = objects.Cluster(
        cluster_name="cluster.example.com", master_ip="192.0.2.254",
        master_netdev="lo", volume_group_name="xenvg",
        enabled_hypervisors=[constants.HT_FAKE], mac_prefix="aa:00:00",
        rsahostkeypub="ssh-rsa AAAA", candidate_pool_size=3)
    master = objects.Node(name=MASTER_NAME, primary_ip="192.0.2.1")
    config_base.InitConfig(constants.CONFIG_VERSION, cluster, master, str(cfg_file))
    return cfg_file


class Master:
    """A ganeti-masterd process in its own node root."""

    def __init__(self, base: Path, name: str = MASTER_NAME,
                 privsep: Any = None) -> None:
        self.name = name
        self.root = base / name
        self.root.mkdir(parents=True, exist_ok=True)
        #: a privsep.Privsep: the daemons switch to its users
        self.privsep = privsep
        self.python = privsep.python if privsep is not None else sys.executable
        self.env = dict(os.environ)
        if privsep is not None:
            self.env.update(privsep.env)
        self.env.update({
            constants.GANETI_ROOTDIR_ENV: str(self.root),
            constants.GANETI_HOSTNAME_ENV: name,
            "PYTHONPATH": os.pathsep.join(
                [str(REPO / "build" / "pylib")]
                + [p for p in [os.environ.get("PYTHONPATH")] if p]),
        })
        self.socket_path = str(_NodePath(self.root, constants.DEFAULT_RUN_DIR)
                               / "socket" / "ganeti-master")
        self.query_socket_path = str(Path(self.socket_path).parent / "ganeti-query")
        self.queue_dir = _NodePath(self.root, constants.DEFAULT_DATA_DIR) / "queue"
        self.pid_file = _NodePath(self.root, constants.DEFAULT_RUN_DIR) / \
            f"{constants.MASTERD}.pid"
        self.log_file = _NodePath(self.root, constants.DEFAULT_LOG_DIR) / \
            "master-daemon.log"
        self.proc: subprocess.Popen | None = None
        #: The daemon's stderr goes to a file: a pipe nobody reads would
        #: block the daemon once its buffer is full
        self.stderr_file = self.root / "masterd.stderr"
        self.cfg_file = _WriteClusterConfig(self.root)

    @property
    def pid(self) -> int | None:
        """The daemon's pid while it runs."""
        return self.proc.pid if self.proc is not None else None

    def command(self, *args: str) -> list[str]:
        """The command line running ganeti-masterd with ``args``."""
        return [self.python, str(MASTERD), *args]

    def luxi_client(self, **kwargs: object) -> luxi_client.Client:
        """A luxi client connected to this master's socket."""
        kwargs.setdefault("timeouts", (10, 60))
        return luxi_client.Client(self.socket_path, **kwargs)  # type: ignore[arg-type]

    def raw_socket(self, timeout: float = 30) -> socket.socket:
        """A plain socket connected to the master socket (for wire tests)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            with protocol.SocketAddress(self.socket_path) as address:
                sock.connect(address)
        except BaseException:
            sock.close()
            raise
        return sock

    def start(self, *args: str) -> Master:
        """Start the daemon in the foreground and wait for its socket."""
        assert self.proc is None or self.proc.poll() is not None
        if self.privsep is not None:
            # What daemon-util start does first
            self.privsep.ensure_dirs(self.env)
        with open(self.stderr_file, "ab") as stderr:
            self.proc = subprocess.Popen(
                self.command("-f", *args), env=self.env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                err = self.stderr_file.read_text(errors="replace")[-4000:]
                raise AssertionError(f"ganeti-masterd exited with {self.proc.returncode}:"
                                     f" {err}")
            if self._Connectable():
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("ganeti-masterd did not open its socket in"
                                     f" {START_TIMEOUT}s")
            time.sleep(0.02)  # bounded poll for the socket; nothing to wait on

    def _Connectable(self) -> bool:
        if not os.path.exists(self.query_socket_path):
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with protocol.SocketAddress(self.socket_path) as address:
                sock.connect(address)
            return True
        except OSError:
            return False
        finally:
            sock.close()

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM the daemon and wait for it; returns its exit code."""
        return self._Signal(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL the daemon (an unclean stop) and reap it."""
        return self._Signal(signal.SIGKILL, STOP_TIMEOUT)

    def _Signal(self, signum: int, timeout: float) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signum)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return proc.returncode

    def job_file(self, job_id: int) -> Path:
        """The path of a job's file in the queue directory."""
        return self.queue_dir / f"job-{job_id}"


@pytest.fixture
def master_factory(tmp_path):
    """Create (not start) masters; all are stopped at teardown."""
    masters: list[Master] = []

    def _factory(name: str = MASTER_NAME) -> Master:
        m = Master(tmp_path, name)
        masters.append(m)
        return m

    yield _factory
    for m in masters:
        m.stop()


@pytest.fixture
def master(master_factory):
    """A running ganeti-masterd with a fresh one-node cluster."""
    return master_factory().start()
