"""Build cluster configurations with many nodes and instances, fast.

Used by the instance query tests and by test/bench/instance_query.py: the
objects are put into one ConfigData and written once (adding 10,000
instances through ConfigWriter.AddInstance would rewrite the file 10,000
times).
"""

from __future__ import annotations

import time

from ganeti import config, constants, objects
from ganeti.config import base as config_base


def NodeName(idx: int) -> str:
    return f"node{idx}.example.com"


def InstanceName(idx: int) -> str:
    return f"inst{idx}.example.com"


def MakeConfig(path: str, n_nodes: int, n_instances: int,
               node_names: list[str] | None = None,
               templates: tuple[str, ...] = (constants.DT_DISKLESS, constants.DT_FILE),
               ) -> config.ConfigWriter:
    """A ConfigWriter over ``path`` with nodes and instances.

    Instance ``i`` lives on node ``i % n_nodes``, uses the template
    ``templates[i % len(templates)]`` (file disks of 1024 MiB then 512 MiB),
    has one NIC with MAC ``aa:00:00:xx:xx:xx``, and is marked up when ``i``
    is even.
    """
    names = node_names or [NodeName(i) for i in range(n_nodes)]
    cluster = objects.Cluster(
        cluster_name="cluster.example.com", master_ip="192.0.2.254",
        master_netdev="lo", enabled_hypervisors=[constants.HT_FAKE],
        enabled_disk_templates=[constants.DT_FILE, constants.DT_DISKLESS],
        mac_prefix="aa:00:00", rsahostkeypub="ssh-rsa AAAA",
        file_storage_dir="/srv/ganeti/file-storage")
    master = objects.Node(name=names[0], primary_ip="192.0.2.1")
    data = config_base.InitConfig(constants.CONFIG_VERSION, cluster, master, path)
    group_uuid = master.group
    now = time.time()
    node_uuids = [master.uuid]
    for idx in range(1, len(names)):
        node = objects.Node(name=names[idx], primary_ip=f"192.0.2.{idx + 1}",
                            secondary_ip=f"192.0.2.{idx + 1}", group=group_uuid,
                            uuid=objects.GenerateUUID(), master_candidate=idx < 3,
                            offline=False, drained=False, master_capable=True,
                            vm_capable=True, serial_no=1, ctime=now, mtime=now)
        node.UpgradeConfig()
        data.nodes[node.uuid] = node
        node_uuids.append(node.uuid)
    for idx in range(n_instances):
        name = InstanceName(idx)
        pnode = node_uuids[idx % len(node_uuids)]
        template = templates[idx % len(templates)]
        disk_uuids = []
        if template == constants.DT_FILE:
            for didx, size in enumerate((1024, 512)):
                disk = objects.Disk(
                    dev_type=constants.DT_FILE, size=size, mode=constants.DISK_RDWR,
                    logical_id=("loop", f"/srv/ganeti/file-storage/{name}/disk{didx}"),
                    iv_name=f"disk/{didx}", nodes=[pnode], uuid=objects.GenerateUUID(),
                    name=f"d{didx}", serial_no=1, ctime=now, mtime=now)
                disk.UpgradeConfig()
                data.disks[disk.uuid] = disk
                disk_uuids.append(disk.uuid)
        mac = "aa:00:00:%02x:%02x:%02x" % ((idx >> 16) & 255, (idx >> 8) & 255, idx & 255)
        nic = objects.NIC(mac=mac, ip=None, nicparams={}, uuid=objects.GenerateUUID())
        inst = objects.Instance(
            name=name, primary_node=pnode, os="noop+default",
            hypervisor=constants.HT_FAKE, hvparams={},
            beparams={constants.BE_MAXMEM: 256} if idx % 3 == 0 else {},
            osparams={}, osparams_private={}, nics=[nic], disks=disk_uuids,
            admin_state=constants.ADMINST_UP if idx % 2 == 0 else constants.ADMINST_DOWN,
            uuid=objects.GenerateUUID(), serial_no=1, ctime=now, mtime=now,
            tags={f"t{idx % 5}"})
        inst.UpgradeConfig()
        data.instances[inst.uuid] = inst
    data.ComputeGroupMembers()
    config_base.WriteConfigData(data, path)
    return config.ConfigWriter(path, accept_foreign=True)
