#!/usr/bin/env python3
"""Benchmark the "instance" query: ``gnt-instance list`` without the daemons.

Writes configurations with 1,000 and 10,000 instances on 20 nodes into a
ConfigWriter and times, best of several rounds:

- ``Query("instance", fields)`` for config-only fields;
- the same plus what ``gnt-instance list`` adds around it: the JSON
  encoding of the luxi answer, its decoding and the table formatting
  (``cli.FormatQueryResult``);
- Ganeti's default list fields (name, hypervisor, os, pnode, status,
  oper_ram) with the node answers given by an in-process fake, so that
  only the query's own cost is measured;
- with ``--live``, the default fields against real node daemons (20 of
  them, 1,000 instances, a tenth of them running under the fake
  hypervisor).

Run as ``.venv/bin/python test/bench/instance_query.py [--sizes 1000,10000]
[--live]``. Target: 10,000 instances listed in under 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from types import SimpleNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "py"))
sys.path.insert(0, os.path.join(HERE, "..", "py", "query"))

import instcfg  # noqa: E402
import nodedhelpers  # noqa: E402

from ganeti import cli, query, serializer  # noqa: E402
from ganeti.rpc.client import RpcResult  # noqa: E402
from ganeti.rpc.defs import InstanceDict  # noqa: E402
from ganeti.rpc.node import RpcRunner, StaticResolver  # noqa: E402

TARGET_10K = 2.0
NODES = 20
CONFIG_FIELDS = ["name", "hypervisor", "os", "pnode", "admin_state", "be/maxmem"]
DEFAULT_FIELDS = ["name", "hypervisor", "os", "pnode", "status", "oper_ram"]
ROUNDS = 5


class FakeLiveRpc:
    """Every node reports the instances whose primary it is and whose
    index is a multiple of 10 as running."""

    def __init__(self, cfg):
        snap = cfg.GetReadOnlySnapshot()
        self.running: dict[str, dict] = {}
        for inst in snap.instances.values():
            idx = int(inst.name[4:].split(".")[0])
            if idx % 10 == 0:
                self.running.setdefault(inst.primary_node, {})[inst.name] = {
                    "memory": 128, "vcpus": 1, "state": "running", "time": 1.0}

    def call_all_instances_info(self, uuids, hv_list, all_hvparams, read_timeout=None):
        return {uuid: RpcResult(data=[True, self.running.get(uuid, {})])
                for uuid in uuids}


def _Best(fn) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _ListLikeCli(ctx, fields) -> None:
    result = query.Query("instance", fields, None, ctx)
    wire = serializer.LoadJson(serializer.DumpJson(result))
    cli.FormatQueryResult(wire, header=True)


def BenchConfig(size: int, base: str) -> None:
    path = os.path.join(base, f"config-{size}.data")
    start = time.perf_counter()
    cfg = instcfg.MakeConfig(path, NODES, size)
    print(f"{size} instances: config written and loaded in"
          f" {time.perf_counter() - start:.2f} s")
    ctx = SimpleNamespace(cfg=cfg, rpc=FakeLiveRpc(cfg))
    figures = [
        ("Query, config fields", lambda: query.Query("instance", CONFIG_FIELDS, None, ctx)),
        ("list as gnt-instance, config fields", lambda: _ListLikeCli(ctx, CONFIG_FIELDS)),
        ("Query, default fields (fake nodes)",
         lambda: query.Query("instance", DEFAULT_FIELDS, None, ctx)),
        ("list as gnt-instance, default fields (fake nodes)",
         lambda: _ListLikeCli(ctx, DEFAULT_FIELDS)),
    ]
    for label, fn in figures:
        best = _Best(fn)
        note = ""
        if size >= 10000 and "gnt-instance" in label:
            note = "  OK" if best < TARGET_10K else f"  OVER TARGET ({TARGET_10K} s)"
        print(f"  {label:52s} {best:.3f} s{note}")


def BenchLive(base: str, size: int = 1000) -> None:
    crypto = nodedhelpers.MakeClusterCrypto(os.path.join(base, "crypto"))
    daemons = nodedhelpers.StartCluster(os.path.join(base, "nodes"), crypto, NODES,
                                        subnet=78, prefix="b")
    try:
        cfg = instcfg.MakeConfig(os.path.join(base, "live.data"), NODES, size,
                                 node_names=[d.name for d in daemons])
        endpoints = {cfg.GetNodeInfoByName(d.name).uuid: d.endpoint for d in daemons}
        rpc = RpcRunner(StaticResolver(endpoints), ssl_config=crypto.ssl_config)
        for daemon in daemons:
            etc = os.path.join(daemon.root, "etc", "ganeti")
            os.makedirs(etc, exist_ok=True)
            with open(os.path.join(etc, "fake-hypervisor.json"), "w",
                      encoding="ascii") as fd:
                json.dump({"memory_total": 1 << 20}, fd)
        cluster = cfg.GetClusterInfo()
        started = 0
        for inst in cfg.GetAllInstancesInfo().values():
            if int(inst.name[4:].split(".")[0]) % 10:
                continue
            arg = InstanceDict(inst, [], cluster.FillHV(inst), cluster.FillBE(inst))
            res = rpc.call_instance_start(inst.primary_node, arg, False, None)
            if res.fail_msg:
                raise RuntimeError(f"cannot start {inst.name}: {res.fail_msg}")
            started += 1
        ctx = SimpleNamespace(cfg=cfg, rpc=rpc)
        best = _Best(lambda: _ListLikeCli(ctx, DEFAULT_FIELDS))
        print(f"{size} instances, {started} running, {NODES} real node daemons:")
        print(f"  {'list as gnt-instance, default fields (live)':52s} {best:.3f} s")
    finally:
        nodedhelpers.StopAll(daemons)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--live", action="store_true",
                        help="Also time live fields against real node daemons")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="gvb", dir="/tmp")
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            BenchConfig(size, base)
        if args.live:
            BenchLive(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
