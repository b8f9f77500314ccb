"""Start and stop real node daemons on loopback addresses, for tests.

Each daemon gets its own root directory (``GANETI_ROOTDIR``) holding a copy
of the cluster certificate, listens on its own 127.0.x.y address and a
port the kernel picks, and reports both in a ready file. Tests wait for the
ready files (polling with a deadline), never for a fixed time, and stop
every daemon by its pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from ganeti import crypto_setup
from ganeti.rpc.client import RpcSslConfig
from ganeti.rpc.node import NodeEndpoint, RpcRunner, StaticResolver

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODED_SCRIPT = os.path.join(REPO_ROOT, "daemons", "ganeti-noded")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


@dataclass
class ClusterCrypto:
    """The cluster certificate (server.pem) and a client certificate."""
    directory: str
    server_pem: str
    client_pem: str
    rapi_pem: str
    hmac_key: str

    @property
    def ssl_config(self) -> RpcSslConfig:
        """What an RPC client uses to talk to the daemons."""
        return RpcSslConfig(ca_file=self.server_pem, cert_file=self.client_pem)


def MakeClusterCrypto(directory: str, master_name: str = "master.example.com"
                      ) -> ClusterCrypto:
    """Generate the cluster's crypto files in ``directory``."""
    os.makedirs(directory, exist_ok=True)
    paths = {
        "nodecert_file": os.path.join(directory, "server.pem"),
        "clientcert_file": os.path.join(directory, "client.pem"),
        "rapicert_file": os.path.join(directory, "rapi.pem"),
        "hmackey_file": os.path.join(directory, "hmac.key"),
        "cds_file": os.path.join(directory, "cluster-domain-secret"),
    }
    crypto_setup.GenerateClusterCrypto(True, True, True, True,
                                       master_name=master_name, **paths)
    return ClusterCrypto(directory, paths["nodecert_file"], paths["clientcert_file"],
                         paths["rapicert_file"], paths["hmackey_file"])


@dataclass
class NodeDaemon:
    """A running ganeti-noded."""
    name: str
    root: str
    address: str
    proc: subprocess.Popen
    port: int = 0
    stopped: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def ready_file(self) -> str:
        return os.path.join(self.root, "ready")

    @property
    def stderr_file(self) -> str:
        return os.path.join(self.root, "stderr.log")

    @property
    def endpoint(self) -> NodeEndpoint:
        return NodeEndpoint(self.name, self.address, self.port)

    def Output(self) -> str:
        """What the daemon wrote to stderr (its console log)."""
        try:
            with open(self.stderr_file, encoding="utf-8", errors="replace") as fd:
                return fd.read()
        except OSError:
            return ""

    def Children(self) -> list[int]:
        """Pids of the daemon's child processes."""
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children", encoding="ascii") as fd:
                return [int(p) for p in fd.read().split()]
        except OSError:
            return []

    def Threads(self) -> list[int]:
        """Ids of the daemon's threads (the main one and one per connection)."""
        try:
            return [int(tid) for tid in os.listdir(f"/proc/{self.pid}/task")]
        except OSError:
            return []

    def Sleepers(self) -> int:
        """How many threads of the daemon and its children sleep in
        ``time.sleep`` now.

        That is how a test sees a ``test_delay`` call being handled: the
        kernel shows the thread (of the daemon, or of the child serving
        the connection) waiting in nanosleep.
        """
        count = 0
        for pid in [self.pid] + self.Children():
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tids:
                try:
                    with open(f"/proc/{pid}/task/{tid}/wchan", encoding="ascii") as fd:
                        if "nanosleep" in fd.read():
                            count += 1
                except OSError:
                    pass
        return count

    def Signal(self, signum: int) -> None:
        """Send a signal to the daemon process only."""
        if self.proc.poll() is None:
            os.kill(self.pid, signum)

    def SignalGroup(self, signum: int) -> None:
        """Send a signal to the daemon and its children (its process group),
        e.g. SIGSTOP to hang a forking daemon's connections as well."""
        if self.proc.poll() is None:
            os.killpg(self.pid, signum)

    def KillGroup(self) -> None:
        """SIGKILL the daemon and its children (its process group)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(STOP_TIMEOUT)
        self.stopped = True

    def Stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM the daemon and wait; SIGKILL its group if it hangs."""
        if self.stopped:
            return self.proc.returncode
        self.stopped = True
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            # Leftover children (e.g. after the daemon was killed)
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout)
        return self.proc.returncode


def _PrepareRoot(root: str, crypto: ClusterCrypto, name: str) -> None:
    data_dir = os.path.join(root, "var", "lib", "ganeti")
    os.makedirs(data_dir, exist_ok=True)
    for src in (crypto.server_pem, crypto.client_pem):
        dst = os.path.join(data_dir, os.path.basename(src))
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o400)


def StartDaemon(base_dir: str, crypto: ClusterCrypto, name: str, address: str,
                extra_args: list[str] | None = None, mlock: bool = False,
                env: dict[str, str] | None = None) -> NodeDaemon:
    """Start one daemon (without waiting for it)."""
    root = os.path.join(base_dir, name)
    _PrepareRoot(root, crypto, name)
    args = [sys.executable, NODED_SCRIPT, "-f", "-b", address, "-p", "0",
            "--ready-file", os.path.join(root, "ready")]
    if not mlock:
        args.append("--no-mlock")
    args.extend(extra_args or [])
    proc_env = dict(os.environ, GANETI_ROOTDIR=root, GANETI_HOSTNAME=name)
    proc_env.update(env or {})
    with open(os.path.join(root, "stderr.log"), "wb") as err:
        proc = subprocess.Popen(args, env=proc_env, stdin=subprocess.DEVNULL,
                                stdout=err, stderr=err, start_new_session=True)
    return NodeDaemon(name=name, root=root, address=address, proc=proc)


def WaitReady(daemons: list[NodeDaemon], timeout: float = START_TIMEOUT) -> None:
    """Wait until every daemon has written its ready file.

    Raises RuntimeError (with the daemon's output) when one exits first or
    the deadline passes.
    """
    deadline = time.monotonic() + timeout
    pending = list(daemons)
    while pending:
        for daemon in list(pending):
            if os.path.exists(daemon.ready_file):
                with open(daemon.ready_file, encoding="ascii") as fd:
                    fields = fd.read().split()
                if len(fields) == 3:
                    daemon.port = int(fields[1])
                    pending.remove(daemon)
                    continue
            if daemon.proc.poll() is not None:
                raise RuntimeError(f"node daemon {daemon.name} exited with"
                                   f" {daemon.proc.returncode}:\n{daemon.Output()}")
        if not pending:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"node daemons not ready after {timeout}s: "
                               + ", ".join(d.name for d in pending))
        time.sleep(0.02)


def LoopbackAddress(index: int, subnet: int = 77) -> str:
    """A distinct loopback address per daemon: 127.<subnet>.x.y."""
    return f"127.{subnet}.{index // 250}.{index % 250 + 1}"


def StartCluster(base_dir: str, crypto: ClusterCrypto, count: int,
                 extra_args: list[str] | None = None, subnet: int = 77,
                 prefix: str = "node", mlock: bool = False) -> list[NodeDaemon]:
    """Start ``count`` daemons and wait for all of them."""
    daemons: list[NodeDaemon] = []
    try:
        for idx in range(count):
            daemons.append(StartDaemon(base_dir, crypto, f"{prefix}{idx}.example.com",
                                       LoopbackAddress(idx, subnet), extra_args,
                                       mlock=mlock))
        WaitReady(daemons)
    except BaseException:
        StopAll(daemons)
        raise
    return daemons


def StopAll(daemons: list[NodeDaemon]) -> None:
    """Stop daemons: SIGTERM to all first, then wait for each."""
    for daemon in daemons:
        if not daemon.stopped and daemon.proc.poll() is None:
            try:
                os.kill(daemon.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for daemon in daemons:
        daemon.Stop()


def MakeRunner(crypto: ClusterCrypto, daemons: list[NodeDaemon],
               offline: tuple[str, ...] = (), **kwargs) -> RpcRunner:
    """An RpcRunner that knows the daemons by name."""
    resolver = StaticResolver({d.name: d.endpoint for d in daemons}, offline=offline)
    return RpcRunner(resolver, ssl_config=crypto.ssl_config, **kwargs)


# --- pytest fixtures (imported by the conftest.py of each test directory) -----

try:
    import pytest
except ImportError:  # the benchmark imports this module without pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:
    @pytest.fixture(scope="session")
    def cluster_crypto(tmp_path_factory) -> ClusterCrypto:
        """Cluster certificate and keys, generated once per test session."""
        return MakeClusterCrypto(str(tmp_path_factory.mktemp("crypto")))

    @pytest.fixture
    def start_noded(tmp_path, cluster_crypto):
        """A function starting node daemons; all are stopped after the test.

        ``start_noded(count, extra_args=None, subnet=77, mlock=False)``
        returns the list of ready daemons.
        """
        started: list[NodeDaemon] = []

        def _Start(count: int = 1, extra_args: list[str] | None = None,
                   subnet: int = 77, mlock: bool = False) -> list[NodeDaemon]:
            base = str(tmp_path / f"nodes{len(started)}")
            daemons = StartCluster(base, cluster_crypto, count, extra_args,
                                   subnet=subnet, prefix=f"n{len(started)}x",
                                   mlock=mlock)
            started.extend(daemons)
            return daemons

        yield _Start
        StopAll(started)
