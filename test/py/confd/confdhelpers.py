"""Shared by the confd tests and benchmark: a cluster configuration and
real ganeti-confd daemons on loopback addresses.

:func:`MakeConfigData` builds a configuration with six nodes in every role,
instances with NICs on two links and DRBD disks. :func:`StartConfd` runs
``daemons/ganeti-confd -f`` in its own ``GANETI_ROOTDIR`` holding that
configuration and the cluster's ``hmac.key``, on a port the kernel picks;
tests wait for its ready file (polling with a deadline) and stop it by pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from ganeti import constants, objects
from ganeti.config import base as config_base

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
CONFD_SCRIPT = os.path.join(REPO_ROOT, "daemons", "ganeti-confd")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

MASTER = "node1.example.com"
NODES = {
    # name: (primary IP, candidate, offline, drained)
    "node1.example.com": ("192.0.2.1", True, False, False),
    "node2.example.com": ("192.0.2.2", True, False, False),
    "node3.example.com": ("192.0.2.3", True, False, False),
    "node4.example.com": ("192.0.2.4", False, False, False),
    "node5.example.com": ("192.0.2.5", False, True, False),
    "node6.example.com": ("192.0.2.6", False, False, True),
}
DEFAULT_LINK = "br0"
HMAC_KEY = b"0123456789abcdef0123456789abcdef01234567\n"


def NodeUuid(name: str) -> str:
    """A fixed UUID per node name (so tests can name them)."""
    index = int(name[4])
    return f"00000000-0000-4000-8000-00000000000{index}"


def _DrbdDisk(uuid: str, node_a: str, node_b: str, minor_a: int,
              minor_b: int, port: int) -> objects.Disk:
    children = [
        objects.Disk(dev_type=constants.DT_PLAIN, size=1024,
                     logical_id=("xenvg", f"{uuid}.data")),
        objects.Disk(dev_type=constants.DT_PLAIN, size=128,
                     logical_id=("xenvg", f"{uuid}.meta")),
    ]
    return objects.Disk(dev_type=constants.DT_DRBD8, uuid=uuid, size=1024,
                        children=children, iv_name="disk/0",
                        nodes=[NodeUuid(node_a), NodeUuid(node_b)],
                        logical_id=(NodeUuid(node_a), NodeUuid(node_b), port,
                                    minor_a, minor_b, "secret"))


def MakeConfigData(serial: int = 10,
                   extra_nodes: dict[str, str] | None = None
                   ) -> objects.ConfigData:
    """The test cluster's configuration with ``serial_no`` = ``serial``.

    ``extra_nodes`` (name -> primary IP) adds regular nodes.

    Instances:
    - inst1 on node2 (DRBD to node3, minors 0/1; a plain disk): NICs
      198.51.100.1 (default link br0) and 198.51.100.11 (link br1);
    - inst2 on node3 (DRBD to node2, minors 2/3): NIC 198.51.100.2;
    - inst3 on node4 (plain disk): NIC 198.51.100.3 and one without an IP.
    """
    cluster = objects.Cluster(
        cluster_name="cluster.example.com", master_ip="192.0.2.254",
        master_netdev="eth0", volume_group_name="xenvg",
        enabled_hypervisors=[constants.HT_FAKE], mac_prefix="aa:00:00",
        rsahostkeypub="ssh-rsa AAAA", candidate_pool_size=3,
        nicparams={constants.PP_DEFAULT: {
            constants.NIC_MODE: constants.NIC_MODE_BRIDGED,
            constants.NIC_LINK: DEFAULT_LINK}})
    master = objects.Node(name=MASTER, primary_ip=NODES[MASTER][0],
                          uuid=NodeUuid(MASTER))
    data = _InitInMemory(cluster, master)
    group_uuid = master.group
    all_nodes = dict((name, spec) for name, spec in NODES.items()
                     if name != MASTER)
    for name, ip in (extra_nodes or {}).items():
        all_nodes[name] = (ip, False, False, False)
    for idx, (name, (ip, mc, offline, drained)) in \
            enumerate(sorted(all_nodes.items())):
        uuid = NodeUuid(name) if name in NODES else \
            f"00000000-0000-4000-8000-1000000000{idx:02d}"
        node = objects.Node(name=name, primary_ip=ip, uuid=uuid,
                            master_candidate=mc, offline=offline,
                            drained=drained, group=group_uuid, serial_no=1)
        node.UpgradeConfig()
        data.nodes[uuid] = node
    disks = [
        _DrbdDisk("d0000000-0000-4000-8000-000000000001",
                  "node2.example.com", "node3.example.com", 0, 1, 11000),
        objects.Disk(dev_type=constants.DT_PLAIN, size=512,
                     uuid="d0000000-0000-4000-8000-000000000002",
                     iv_name="disk/1", nodes=[NodeUuid("node2.example.com")],
                     logical_id=("xenvg", "inst1.disk1")),
        _DrbdDisk("d0000000-0000-4000-8000-000000000003",
                  "node3.example.com", "node2.example.com", 2, 3, 11001),
        objects.Disk(dev_type=constants.DT_PLAIN, size=256,
                     uuid="d0000000-0000-4000-8000-000000000004",
                     iv_name="disk/0", nodes=[NodeUuid("node4.example.com")],
                     logical_id=("xenvg", "inst3.disk0")),
    ]
    for disk in disks:
        disk.UpgradeConfig()
        data.disks[disk.uuid] = disk
    instances = [
        ("inst1.example.com", "node2.example.com",
         [("198.51.100.1", None), ("198.51.100.11", "br1")],
         [disks[0].uuid, disks[1].uuid]),
        ("inst2.example.com", "node3.example.com",
         [("198.51.100.2", None)], [disks[2].uuid]),
        ("inst3.example.com", "node4.example.com",
         [("198.51.100.3", None), (None, None)], [disks[3].uuid]),
    ]
    mac = 0
    for idx, (name, pnode, nics, disk_uuids) in enumerate(instances):
        nic_objs = []
        for ip, link in nics:
            mac += 1
            nic_objs.append(objects.NIC(
                mac=f"aa:00:00:00:00:{mac:02x}", ip=ip,
                uuid=f"a0000000-0000-4000-8000-0000000000{mac:02d}",
                nicparams={constants.NIC_LINK: link} if link else {}))
        inst = objects.Instance(
            name=name, primary_node=NodeUuid(pnode), os="debian",
            hypervisor=constants.HT_FAKE, nics=nic_objs, disks=disk_uuids,
            uuid=f"10000000-0000-4000-8000-00000000000{idx + 1}",
            admin_state=constants.ADMINST_UP, serial_no=1)
        inst.UpgradeConfig()
        data.instances[inst.uuid] = inst
    data.serial_no = serial
    data.ComputeGroupMembers()
    return data


def _InitInMemory(cluster: objects.Cluster, master: objects.Node
                  ) -> objects.ConfigData:
    """InitConfig without writing a file (it writes to a throwaway path)."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        return config_base.InitConfig(constants.CONFIG_VERSION, cluster,
                                      master, os.path.join(tmp, "config.data"))


def WriteConfig(path: str, data: objects.ConfigData) -> None:
    """Write ``data`` to ``path`` atomically (a rename, as the master does)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    config_base.WriteConfigData(data, path)


def DataDir(root: str) -> str:
    """The data directory (config.data, hmac.key) under a node root."""
    return os.path.join(root, constants.DEFAULT_DATA_DIR.lstrip("/"))


def WriteHmacKey(root: str, key: bytes = HMAC_KEY) -> str:
    """Write the HMAC key atomically under ``root``; return its path."""
    from ganeti import utils
    path = os.path.join(DataDir(root), constants.CONFD_HMAC_KEY_NAME)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    utils.WriteFile(path, data=key, mode=0o400)
    return path


@dataclass
class ConfdDaemon:
    """A running ganeti-confd."""
    name: str
    root: str
    address: str
    proc: subprocess.Popen
    port: int = 0
    stopped: bool = False
    signalled: bool = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def Terminate(self) -> None:
        """Send SIGTERM once."""
        if not self.signalled and self.proc.poll() is None:
            self.signalled = True
            os.kill(self.pid, signal.SIGTERM)

    @property
    def ready_file(self) -> str:
        return os.path.join(self.root, "ready")

    @property
    def cfg_file(self) -> str:
        return os.path.join(DataDir(self.root), constants.CLUSTER_CONF_FILE_NAME)

    @property
    def peer(self) -> tuple[str, int]:
        return (self.address, self.port)

    def Output(self) -> str:
        """What the daemon wrote to stderr."""
        try:
            with open(os.path.join(self.root, "stderr.log"), encoding="utf-8",
                      errors="replace") as fd:
                return fd.read()
        except OSError:
            return ""

    def Alive(self) -> bool:
        return self.proc.poll() is None

    def Stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM the daemon and wait; SIGKILL it if it hangs."""
        if self.stopped:
            return self.proc.returncode
        self.stopped = True
        if self.proc.poll() is None:
            self.Terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        return self.proc.returncode


def StartConfd(base_dir: str, name: str, address: str,
               data: objects.ConfigData | None,
               key: bytes = HMAC_KEY, debug: bool = False,
               extra_args: list[str] | None = None) -> ConfdDaemon:
    """Start one daemon (without waiting for it); ``extra_args`` are added
    to its command line (e.g. ``--reload-quiet``)."""
    root = os.path.join(base_dir, name)
    WriteHmacKey(root, key)
    if data is not None:
        WriteConfig(os.path.join(DataDir(root),
                                 constants.CLUSTER_CONF_FILE_NAME), data)
    args = [sys.executable, CONFD_SCRIPT, "-f", "-b", address, "-p", "0",
            "--ready-file", os.path.join(root, "ready")]
    if debug:
        args.append("-d")
    args.extend(extra_args or [])
    env = dict(os.environ, GANETI_ROOTDIR=root, GANETI_HOSTNAME=name)
    with open(os.path.join(root, "stderr.log"), "wb") as err:
        proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL,
                                stdout=err, stderr=err, start_new_session=True)
    return ConfdDaemon(name=name, root=root, address=address, proc=proc)


def WaitReady(daemons: list[ConfdDaemon], timeout: float = START_TIMEOUT
              ) -> None:
    """Wait until every daemon wrote its ready file (or fail, with output)."""
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
                raise RuntimeError(f"confd {daemon.name} exited with"
                                   f" {daemon.proc.returncode}:\n"
                                   f"{daemon.Output()}")
        if not pending:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"confd not ready after {timeout}s: "
                               + ", ".join(d.name for d in pending))
        time.sleep(0.02)


def StopAll(daemons: list[ConfdDaemon]) -> None:
    """SIGTERM every daemon, then wait for each."""
    for daemon in daemons:
        if not daemon.stopped:
            daemon.Terminate()
    for daemon in daemons:
        daemon.Stop()


def ReloadLines(daemon: ConfdDaemon) -> list[str]:
    """The daemon's "Configuration loaded" log lines (startup included)."""
    return [line for line in daemon.Output().splitlines()
            if "Configuration loaded" in line]


def WaitFor(predicate, timeout: float = 20.0, interval: float = 0.05,
            what: str = "condition"):
    """Poll ``predicate`` until it returns a true value (or fail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for"
                                 f" {what}")
        time.sleep(interval)


class ProcessorThread:
    """A ConfdProcessor answering on a UDP socket in a thread (in-process
    tests of the client). Use as a context manager; stops and joins."""

    def __init__(self, processor, address: str = "127.0.0.1"):
        import socket
        import threading
        self.processor = processor
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 0))
        self.peer = self.sock.getsockname()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._Run, daemon=True)
        self.received = 0
        self.mute = False  # receive but never answer

    def _Run(self) -> None:
        import select
        while not self._stop.is_set():
            readable, _, _ = select.select([self.sock], [], [], 0.05)
            if not readable:
                continue
            data, addr = self.sock.recvfrom(65536)
            self.received += 1
            if self.mute:
                continue
            reply = self.processor.HandleDatagram(data, addr)
            if reply is not None:
                self.sock.sendto(reply, addr)

    def __enter__(self) -> ProcessorThread:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(10)
        self.sock.close()
