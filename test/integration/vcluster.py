"""A virtual cluster for integration tests and benchmarks.

:class:`VirtualCluster` runs the real ``tools/vcluster-setup`` (or ``make
vcluster``) in a short temporary directory, on a loopback prefix
``127.0.<k>`` picked per cluster (:func:`PickNet`) so that tests never
collide with a user's cluster on ``127.0.1`` nor with each other. Tests run
the gnt-* tools as any node with :meth:`VirtualCluster.run` and inspect node
roots with :meth:`VirtualCluster.path`. :meth:`VirtualCluster.cleanup` stops
every daemon by PID (through the tool, then directly as a safety net) and
checks that none is left.

Use the :func:`virtual_cluster` context manager, or the pytest fixture
factory :func:`make_fixture`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ganeti import constants, vcluster
from ganeti.hypervisor.hv_kvm import netdev

REPO = Path(__file__).resolve().parents[2]
SETUP_TOOL = REPO / "tools" / "vcluster-setup"
#: Third octets never picked: 1 is the default of `make vcluster`
_RESERVED_NETS = {0, 1, 255}
COMMAND_TIMEOUT = 300.0


def _Free(address: str, port: int, kind: int) -> bool:
    sock = socket.socket(socket.AF_INET, kind)
    try:
        sock.bind((address, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def PickNet(count: int = 3, rng: random.Random | None = None) -> str:
    """A prefix ``127.0.<k>`` whose first ``count`` addresses have the noded
    (tcp) and confd (udp) ports free."""
    rng = rng or random.Random(os.getpid() ^ time.time_ns())
    candidates = [k for k in range(2, 255) if k not in _RESERVED_NETS]
    rng.shuffle(candidates)
    for k in candidates:
        net = f"127.0.{k}"
        if all(_Free(f"{net}.{i}", constants.DEFAULT_NODED_PORT, socket.SOCK_STREAM)
               and _Free(f"{net}.{i}", constants.DEFAULT_CONFD_PORT, socket.SOCK_DGRAM)
               for i in range(1, count + 1)):
            return net
    raise RuntimeError("no free 127.0.k.0/24 prefix for a virtual cluster")


class VirtualCluster:
    """A virtual cluster of ``nodes`` nodes in ``directory`` (not yet set up)."""

    def __init__(self, directory: str | os.PathLike, nodes: int = 3,
                 net: str | None = None, parallel: int = 1,
                 python: str = sys.executable,
                 hypervisor: str = constants.HT_FAKE, storage: bool = False,
                 loop_activation: bool = False) -> None:
        self.directory = str(directory)
        #: LVM volume groups on the nodes, plain and drbd enabled (root only)
        self.storage = storage
        #: plain disks are real block devices (loop devices; with storage)
        self.loop_activation = loop_activation
        self.count = nodes
        self.net = net or PickNet(nodes)
        self.parallel = parallel
        self.hypervisor = hypervisor
        #: The interpreter of the setup tool, the daemons and :meth:`run`
        self.python = python
        self.tools = vcluster.Tools(str(REPO), python)
        self.setup_output = ""

    # --- lifecycle -----------------------------------------------------------

    def setup_command(self) -> list[str]:
        """The command line of ``vcluster-setup`` for this cluster."""
        return [self.python, str(SETUP_TOOL), "--dir", self.directory,
                "--nodes", str(self.count), "--net", self.net,
                "--parallel", str(self.parallel), "--hypervisor", self.hypervisor,
                "--storage" if self.storage else "--no-storage",
                *(["--lvm-loop-activation"] if self.loop_activation else [])]

    def make_command(self, target: str = "vcluster") -> list[str]:
        """The ``make`` command line for ``target`` on this cluster."""
        return ["make", "--no-print-directory", "-C", str(REPO), target,
                f"VCLUSTER_DIR={self.directory}", f"VCLUSTER_NODES={self.count}",
                f"VCLUSTER_NET={self.net}", f"VCLUSTER_HV={self.hypervisor}",
                "VCLUSTER_ARGS=" + ("--storage" if self.storage else "--no-storage")
                + (" --lvm-loop-activation" if self.loop_activation else ""),
                f"VPY={self.python}"]

    def setup(self, use_make: bool = False, timeout: float = 900) -> str:
        """Create and start the cluster; returns the tool's output.

        @raise AssertionError: with the output and the setup log on failure
        """
        cmd = self.make_command() if use_make else self.setup_command()
        result = self._Tool(cmd, timeout)
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n--- setup.log ---\n{self.log()}")
        self.setup_output = result.stdout
        return result.stdout

    def stop(self, use_make: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run ``vcluster-setup --stop`` (or ``make vcluster-stop``)."""
        cmd = self.make_command("vcluster-stop") if use_make else \
            [self.python, str(SETUP_TOOL), "--dir", self.directory, "--stop"]
        return self._Tool(cmd, timeout)

    @staticmethod
    def _Tool(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout,
                              check=False, cwd=str(REPO))

    def cleanup(self) -> list[int]:
        """Stop every daemon of the cluster by PID; return the ones that were
        still running after ``vcluster-setup --stop`` (should be none)."""
        try:
            self.stop()
        finally:
            state = self.state()
            leftovers = vcluster.StopDaemons(self.directory, state, timeout=10)
            if state is not None and state.storage:
                # Also after a failed stop: no loop device may stay behind
                from ganeti.storage import lvm_view
                for node in state.nodes:
                    lvm_view.TeardownNodeLvm(node.root)
        return leftovers

    def log(self) -> str:
        """The setup log (every command and its output)."""
        try:
            return (Path(self.directory) / vcluster.LOG_FILE).read_text()[-20000:]
        except OSError:
            return ""

    # --- inspection ----------------------------------------------------------

    def state(self) -> vcluster.State | None:
        """The state file's contents."""
        return vcluster.State.Load(self.directory)

    @property
    def nodes(self) -> list[vcluster.Node]:
        """Every node (from the state file, else as planned)."""
        state = self.state()
        if state is not None:
            return state.nodes
        return vcluster.PlanNodes(self.directory, self.count, self.net)

    @property
    def names(self) -> list[str]:
        """Node names, node 1 first."""
        return [node.name for node in self.nodes]

    def node(self, name_or_index: str | int) -> vcluster.Node:
        """A node by name or 1-based number."""
        if isinstance(name_or_index, int):
            return self.nodes[name_or_index - 1]
        for node in self.nodes:
            if node.name == name_or_index:
                return node
        raise KeyError(name_or_index)

    def master(self) -> str:
        """The current master node according to ssconf."""
        state = self.state()
        assert state is not None
        return vcluster.MasterName(state)

    def daemons(self) -> dict[tuple[str, str], int]:
        """Live daemons: (node, daemon) -> pid."""
        state = self.state()
        return vcluster.RunningDaemons(state) if state is not None else {}

    def path(self, node: str | int, path: str) -> Path:
        """``path`` (absolute, as on a real node) inside a node's root."""
        return Path(self.node(node).root) / path.lstrip("/")

    def config(self, node: str | int | None = None) -> dict[str, Any]:
        """The parsed ``config.data`` of a node (default: the master)."""
        path = self.path(node if node is not None else self.master(),
                         constants.DEFAULT_DATA_DIR + "/config.data")
        return json.loads(path.read_text(encoding="utf-8"))

    def env(self, node: str | int | None = None) -> dict[str, str]:
        """The environment of a process acting as ``node`` (default: master)."""
        return self.tools.NodeEnv(self.node(node if node is not None else self.master()))

    def lvm(self, node: str | int, *args: str, timeout: float = 60) -> str:
        """Run an lvm2 command (``lvs``, ``lvcreate``, ...) through the
        node's own LVM view (a cluster with ``storage``); its stdout."""
        env = dict(os.environ,
                   LVM_SYSTEM_DIR=os.path.join(self.node(node).root, "etc/lvm"),
                   LVM_SUPPRESS_FD_WARNINGS="1")
        return subprocess.run(list(args), env=env, capture_output=True, text=True,
                              check=True, timeout=timeout).stdout

    def instance_disks(self, name: str, node: str | int | None = None) -> list[dict]:
        """The disks of instance ``name`` in a node's ``config.data``."""
        config = self.config(node)
        inst = next(i for i in config["instances"].values() if i["name"] == name)
        return [config["disks"][uuid] for uuid in inst["disks"]]

    def taps(self) -> set[str]:
        """The tap interfaces of this cluster's instances' NICs on any of
        its nodes (named as the kvm hypervisor names them: netdev.TapPrefix
        of the NIC's UUID, with the node's root hashed in): other tests of
        the machine have theirs."""
        instances = self.config().get("instances", {}).values()
        uuids = [nic["uuid"] for inst in instances for nic in inst.get("nics", [])
                 if nic.get("uuid")]
        prefixes = tuple(
            f"{netdev.TAP_PREFIX}"
            f"{netdev._Hash(uuid + '@' + node.root, netdev._INSTANCE_HASH_LEN)}-"
            for uuid in uuids for node in self.nodes)
        if not prefixes:
            return set()
        return {name for name in os.listdir("/sys/class/net") if name.startswith(prefixes)}

    def run(self, tool: str, *args: str, node: str | int | None = None,
            check: bool = True, timeout: float = COMMAND_TIMEOUT,
            input: str | None = None) -> subprocess.CompletedProcess:
        """Run a gnt-* tool (or any script of scripts/, daemons/, tools/)
        as ``node`` (default: the master); stdout and stderr are kept apart.

        @raise AssertionError: when ``check`` and it exits non-zero
        """
        cmd = [self.python, self.tools.Script(tool), *args]
        result = subprocess.run(cmd, env=self.env(node), capture_output=True,
                                text=True, timeout=timeout, check=False,
                                input=input,
                                stdin=None if input is not None else subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}{result.stderr}")
        return result


@contextlib.contextmanager
def virtual_cluster(nodes: int = 3, parallel: int = 1, use_make: bool = False,
                    keep: bool = False,
                    hypervisor: str = constants.HT_FAKE,
                    storage: bool = False,
                    loop_activation: bool = False) -> Iterator[VirtualCluster]:
    """A set-up virtual cluster in a fresh short /tmp directory, stopped (and
    the directory removed unless ``keep``) on exit."""
    directory = tempfile.mkdtemp(prefix="gv", dir="/tmp")
    cluster = VirtualCluster(directory, nodes=nodes, parallel=parallel,
                             hypervisor=hypervisor, storage=storage,
                             loop_activation=loop_activation)
    try:
        cluster.setup(use_make=use_make)
        yield cluster
    finally:
        leftovers = cluster.cleanup()
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)
        assert not leftovers, f"daemons still ran after vcluster-setup --stop: {leftovers}"
