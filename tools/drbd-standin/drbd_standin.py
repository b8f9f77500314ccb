"""A stand-in for DRBD 8.4 on the nodes of a virtual cluster.

The ``drbdsetup``, ``drbdmeta`` and ``drbdsetup-standin-ctl`` programs next
to this module run :func:`Main`. They keep each node's DRBD devices as JSON
files below ``$GANETI_ROOTDIR/var/lib/drbd-standin`` and, after every run,
write the node's ``proc/drbd`` and the module's usermode helper parameter,
as the kernel would show them. Peers find each other through a registry
directory shared by all nodes (``$DRBD_STANDIN_SHARED``, else
``drbd-standin`` next to the node roots). See doc/drbd-standin.rst.

Only the Python standard library is used. Without GANETI_ROOTDIR the
programs refuse to run: they are never meant for a real node.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
import time
from typing import Any

DEFAULT_VERSION = "8.4.11"
DEFAULT_SYNC_MIB_S = 256.0
USERMODE_HELPER = "/bin/true"

USAGE_EXIT, FAILURE_EXIT, STATE_EXIT = 20, 10, 11

# drbdsetup 8.4's options: "bool" takes an optional "=yes/no", "flag" no value,
# a tuple lists the allowed values, "num" is a number with an optional unit
_NUM, _STR, _BOOL, _FLAG = "num", "str", "bool", "flag"
DISK_OPTIONS: dict[str, Any] = {
    "size": _NUM, "max-bio-bvecs": _NUM,
    "on-io-error": ("pass_on", "call-local-io-error", "detach"),
    "fencing": ("dont-care", "resource-only", "resource-and-stonith"),
    "disk-barrier": _BOOL, "disk-flushes": _BOOL, "disk-drain": _BOOL, "md-flushes": _BOOL,
    "resync-rate": _NUM, "resync-after": _STR, "al-extents": _NUM, "al-updates": _BOOL,
    "discard-zeroes-if-aligned": _BOOL, "c-plan-ahead": _NUM, "c-delay-target": _NUM,
    "c-fill-target": _NUM, "c-max-rate": _NUM, "c-min-rate": _NUM, "disk-timeout": _NUM,
    "read-balancing": ("prefer-local", "prefer-remote", "round-robin", "least-pending",
                       "when-congested-remote", "32K-striping", "64K-striping",
                       "128K-striping", "256K-striping", "512K-striping", "1M-striping"),
}
NET_OPTIONS: dict[str, Any] = {
    "tentative": _FLAG, "discard-my-data": _FLAG, "protocol": ("A", "B", "C"),
    "timeout": _NUM, "max-epoch-size": _NUM, "max-buffers": _NUM,
    "unplug-watermark": _NUM, "connect-int": _NUM, "ping-int": _NUM, "sndbuf-size": _NUM,
    "rcvbuf-size": _NUM, "ko-count": _NUM, "allow-two-primaries": _BOOL,
    "cram-hmac-alg": _STR, "shared-secret": _STR,
    "after-sb-0pri": ("disconnect", "discard-younger-primary", "discard-older-primary",
                      "discard-zero-changes", "discard-least-changes", "discard-local",
                      "discard-remote"),
    "after-sb-1pri": ("disconnect", "consensus", "discard-secondary",
                      "call-pri-lost-after-sb", "violently-as0p"),
    "after-sb-2pri": ("disconnect", "call-pri-lost-after-sb", "violently-as0p"),
    "always-asbp": _BOOL, "rr-conflict": ("disconnect", "call-pri-lost", "violently"),
    "ping-timeout": _NUM, "data-integrity-alg": _STR, "tcp-cork": _BOOL,
    "on-congestion": ("block", "pull-ahead", "disconnect"), "congestion-fill": _NUM,
    "congestion-extents": _NUM, "csums-alg": _STR, "verify-alg": _STR, "use-rle": _BOOL,
}
_QUOTED_OPTIONS = ("cram-hmac-alg", "shared-secret", "data-integrity-alg", "csums-alg",
                   "verify-alg")
_UNITS = {"s": 512, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}
_NUM_RE = re.compile(r"^(\d+)([sSkKmMgGtT]?)$")
_ADDR_RE = re.compile(r"^(?:(ipv4|ipv6):)?(\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
#: A node's state (below its root's var/lib/drbd-standin) and the shared registry
STATE_FILE = "state.json"
REGISTRY_FILE = "endpoints.json"


class StandinError(Exception):
    """A failed command: ``text`` goes to stderr, ``code`` is the exit code."""

    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code = code
        self.text = text


def Usage(prog: str, text: str) -> StandinError:
    return StandinError(USAGE_EXIT, f"{prog}: {text}")


def Failure(obj: Any, number: int, text: str) -> StandinError:
    return StandinError(FAILURE_EXIT, f"{obj}: Failure: ({number}) {text}")


def StateFailure(obj: Any, number: int, text: str) -> StandinError:
    return StandinError(STATE_EXIT, f"{obj}: State change failed: ({number}) {text}")


def _WriteAtomic(path: str, data: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def ParseSize(prog: str, value: str) -> int:
    """Bytes of a drbdsetup size ("10240m"; no unit: sectors)."""
    match = _NUM_RE.match(value)
    if not match:
        raise Usage(prog, f"invalid size '{value}'")
    return int(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]


def ParseAddress(prog: str, value: str) -> str:
    """Normalise "[af:]host:port" to "af:host:port" (IPv6 hosts in brackets)."""
    match = _ADDR_RE.match(value)
    if not match:
        raise Usage(prog, f"invalid address '{value}' (expected [ipv4:|ipv6:]host:port)")
    family, host, port = match.groups()
    family = family or ("ipv6" if host.startswith("[") else "ipv4")
    if (family == "ipv6") != host.startswith("["):
        raise Usage(prog, f"invalid address '{value}' (IPv6 hosts go in brackets)")
    return f"{family}:{host}:{int(port)}"


def ParseArgs(prog: str, args: list[str], npos: int | tuple[int, int],
              spec: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Split ``args`` into ``npos`` (a number, or a (min, max) range)
    positionals and the options of ``spec``."""
    positional: list[str] = []
    options: dict[str, str] = {}
    idx = 0
    while idx < len(args):
        arg = args[idx]
        idx += 1
        if not arg.startswith("--"):
            positional.append(arg)
            continue
        name, has_value, value = arg[2:].partition("=")
        kind = spec.get(name)
        if kind is None:
            raise Usage(prog, f"unrecognized option '--{name}'")
        if kind == _FLAG:
            if has_value:
                raise Usage(prog, f"option '--{name}' takes no value")
            value = "yes"
        elif kind == _BOOL:
            value = value if has_value else "yes"
            if value not in ("yes", "no"):
                raise Usage(prog, f"option '--{name}' takes yes or no, not '{value}'")
        else:
            if not has_value:
                if idx >= len(args):
                    raise Usage(prog, f"option '--{name}' needs a value")
                value, idx = args[idx], idx + 1
            if isinstance(kind, tuple) and value not in kind:
                raise Usage(prog, f"invalid value '{value}' for --{name}"
                            f" (one of: {', '.join(kind)})")
            if kind == _NUM and not _NUM_RE.match(value):
                raise Usage(prog, f"invalid number '{value}' for --{name}")
        options[name] = value
    low, high = npos if isinstance(npos, tuple) else (npos, npos)
    if not low <= len(positional) <= high:
        wanted = str(low) if low == high else f"{low} to {high}"
        raise Usage(prog, f"expected {wanted} arguments, got {len(positional)}"
                    f" ({' '.join(positional) or 'none'})")
    return positional, options


class World:
    """The devices of every node, under the lock of the shared registry.

    A node's state (its resources and its metadata areas) is one file, and
    the registry of network endpoints another: a run reads the files of the
    nodes it looks at once, whatever their number of devices, and writes
    back those it changed.
    """

    def __init__(self, root: str, shared: str, now: float, rate_kib: float):
        self.root = root
        self.shared = shared
        self.now = now
        self.rate_kib = rate_kib
        self._nodes: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()
        self._registry: dict[str, dict[str, str]] | None = None
        self._registry_dirty = False
        #: Files of the earlier layout, removed once their content is written
        self._legacy: list[str] = []

    @staticmethod
    def StateDir(root: str) -> str:
        return os.path.join(root, "var/lib/drbd-standin")

    def _Node(self, root: str) -> dict[str, Any]:
        """The state of node ``root``: {"resources": {name: record},
        "metadata": {"disks": {device: area}}}."""
        state = self._nodes.get(root)
        if state is None:
            path = os.path.join(self.StateDir(root), STATE_FILE)
            try:
                with open(path) as handle:
                    state = json.load(handle)
            except FileNotFoundError:
                state = self._Legacy(root)
            self._nodes[root] = state
        return state

    def _Legacy(self, root: str) -> dict[str, Any]:
        """A node's state in the layout of earlier versions (a file per
        resource and metadata.json), moved to the state file on the next
        flush; an empty state if there is none."""
        state: dict[str, Any] = {"resources": {}, "metadata": {"disks": {}}}
        directory = self.StateDir(root)
        try:
            entries = sorted(os.listdir(directory))
        except FileNotFoundError:
            return state
        for entry in entries:
            if entry.startswith("res-") and entry.endswith(".json") or \
                    entry == "metadata.json":
                with open(os.path.join(directory, entry)) as handle:
                    rec = json.load(handle)
                self._legacy.append(os.path.join(directory, entry))
                if entry == "metadata.json":
                    state["metadata"] = {"disks": rec.get("disks", {})}
                else:
                    state["resources"][rec["name"]] = rec
                self._dirty.add(root)
        return state

    def Load(self, root: str, name: str) -> dict[str, Any] | None:
        return self._Node(root)["resources"].get(name)

    def Store(self, root: str, rec: dict[str, Any] | None, name: str | None = None) -> None:
        """Keep ``rec`` (None: remove resource ``name``) for the next flush."""
        resources = self._Node(root)["resources"]
        if rec is None:
            resources.pop(name, None)
        else:
            resources[rec["name"]] = rec
        self._dirty.add(root)

    def Resources(self, root: str) -> list[dict[str, Any]]:
        resources = self._Node(root)["resources"]
        return [resources[name] for name in sorted(resources)]

    def ByMinor(self, root: str, minor: int) -> dict[str, Any] | None:
        return next((rec for rec in self._Node(root)["resources"].values()
                     if rec["minor"] == minor), None)

    def Meta(self) -> dict[str, Any]:
        """This node's metadata areas written by drbdmeta, by device (a
        change is kept with :meth:`StoreMeta`)."""
        return self._Node(self.root)["metadata"]

    def StoreMeta(self) -> None:
        self._dirty.add(self.root)

    def Flush(self) -> None:
        for root in sorted(self._dirty):
            _WriteAtomic(os.path.join(self.StateDir(root), STATE_FILE),
                         json.dumps(self._nodes[root], sort_keys=True))
        self._dirty.clear()
        if self._registry_dirty:
            _WriteAtomic(os.path.join(self.shared, REGISTRY_FILE),
                         json.dumps(self._registry, sort_keys=True))
            self._registry_dirty = False
        for path in self._legacy:
            os.unlink(path)
        self._legacy.clear()

    # --- the registry of network endpoints -------------------------------------------------

    def _Registry(self) -> dict[str, dict[str, str]]:
        """{endpoint: {"root": node root, "resource": name}}."""
        if self._registry is None:
            try:
                with open(os.path.join(self.shared, REGISTRY_FILE)) as handle:
                    self._registry = json.load(handle)
            except FileNotFoundError:
                self._registry = self._LegacyRegistry()
        return self._registry

    def _LegacyRegistry(self) -> dict[str, dict[str, str]]:
        """The registry of earlier versions: a file per endpoint."""
        registry = {}
        for entry in sorted(os.listdir(self.shared)):
            if entry.startswith(("ipv4:", "ipv6:")):
                path = os.path.join(self.shared, entry)
                with open(path) as handle:
                    registry[entry] = json.load(handle)
                self._legacy.append(path)
                self._registry_dirty = True
        return registry

    def Endpoint(self, endpoint: str) -> tuple[str, dict[str, Any]] | None:
        """(root, resource) owning ``endpoint``, if still configured so."""
        entry = self._Registry().get(endpoint)
        if entry is None:
            return None
        rec = self.Load(entry["root"], entry["resource"])
        if rec is None or not rec.get("net") or rec["net"]["local"] != endpoint:
            return None
        return entry["root"], rec

    def Register(self, endpoint: str, root: str, name: str) -> None:
        self._Registry()[endpoint] = {"root": root, "resource": name}
        self._registry_dirty = True

    def Unregister(self, endpoint: str) -> None:
        if self._Registry().pop(endpoint, None) is not None:
            self._registry_dirty = True

    # --- derived state --------------------------------------------------------------------

    def Peer(self, rec: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """The peer end (root, record) whose addresses mirror ours."""
        net = rec.get("net")
        if not net:
            return None
        found = self.Endpoint(net["remote"])
        if found is None or found[1]["net"]["remote"] != net["local"]:
            return None
        return found

    def Connection(self, rec: dict[str, Any]
                   ) -> tuple[str, tuple[str, dict[str, Any]] | None]:
        """(connection state, the connected peer or None)."""
        net = rec.get("net")
        if not net:
            return "StandAlone", None
        peer = self.Peer(rec)
        if peer is None:
            return "WFConnection", None
        pnet = peer[1]["net"]
        if pnet.get("secret") != net.get("secret"):
            return "WFConnection", None  # authentication fails, DRBD retries
        if pnet["protocol"] != net["protocol"]:
            return "StandAlone", None
        if rec["role"] == peer[1]["role"] == "Primary" and \
                not (net["two_primaries"] and pnet["two_primaries"]):
            return "StandAlone", None
        return "Connected", peer

    def Settle(self, root: str) -> set[str]:
        """Start and finish resyncs of ``root``'s devices; return the peers' roots."""
        peers = set()
        for rec in self.Resources(root):
            cstate, peer = self.Connection(rec)
            if peer is None:
                if rec.get("sync"):
                    rec["sync"] = None
                    self.Store(root, rec)
                continue
            peers.add(peer[0])
            prec = peer[1]
            good = ("UpToDate",)
            stale = ("Inconsistent", "Outdated")
            if rec["dstate"] in good and prec["dstate"] in stale:
                source, target = rec, prec
            elif prec["dstate"] in good and rec["dstate"] in stale:
                source, target = prec, rec
            else:
                for end, end_root in ((rec, root), (prec, peer[0])):
                    if end.get("sync"):
                        end["sync"] = None
                        self.Store(end_root, end)
                continue
            since = (rec.get("sync") or prec.get("sync") or {}).get("since", self.now)
            total = max(source["size_kib"], target["size_kib"])
            done = total <= 0 or (self.now - since) * self.rate_kib >= total
            if done:
                target["dstate"] = "UpToDate"
            for end, end_root in ((rec, root), (prec, peer[0])):
                sync = None if done else {"since": since, "source": end is source}
                if done or sync != end.get("sync"):
                    end["sync"] = sync
                    self.Store(end_root, end)
        return peers

    def View(self, rec: dict[str, Any]) -> dict[str, Any]:
        """What the kernel would report about a device."""
        cstate, peer = self.Connection(rec)
        view = {"cs": cstate, "role": rec["role"], "peer_role": "Unknown",
                "ds": rec["dstate"], "peer_ds": "DUnknown", "sync": None,
                "peer_name": "peer", "oos": 0}
        if peer is not None:
            view.update(peer_role=peer[1]["role"], peer_ds=peer[1]["dstate"],
                        peer_name=os.path.basename(peer[0]))
            sync = rec.get("sync")
            if sync:
                total = max(rec["size_kib"], peer[1]["size_kib"], 1)
                done = min(total, (self.now - sync["since"]) * self.rate_kib)
                view["cs"] = "SyncSource" if sync["source"] else "SyncTarget"
                view["oos"] = int(total - done)
                view["sync"] = {"percent": 100.0 * done / total, "total": total,
                                "left": int(total - done),
                                "eta": int((total - done) / self.rate_kib)}
        return view


# --- rendering ----------------------------------------------------------------------------

def _SyncLines(sync: dict[str, Any], rate_kib: float) -> list[str]:
    pct, total, left = sync["percent"], sync["total"], sync["left"]
    filled = int(pct / 5)
    bar = "=" * max(filled - 1, 0) + ">" + "." * (20 - max(filled, 1))
    unit = "K"
    if total > 4 * 1024 * 1024:
        unit, total, left = "M", total // 1024, left // 1024
    eta = sync["eta"]
    rate = f"{int(rate_kib):,}"
    return [f"\t[{bar}] sync'ed:{int(pct):3d}.{int(pct * 10) % 10}% ({left}/{total}){unit}",
            f"\tfinish: {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}"
            f" speed: {rate} ({rate}) K/sec"]


def RenderProc(world: World, root: str, version: str) -> str:
    """/proc/drbd of ``root`` (DRBD 9: only the version lines)."""
    if version.startswith("9"):
        return (f"version: {version} (api:2/proto:86-121)\n"
                f"GIT-hash: 0000000000000000000000000000000000000000 build by drbd-standin\n"
                f"Transports (api:18): tcp ({version})\n")
    lines = [f"version: {version} (api:1/proto:86-101)", "srcversion: 0D57A19DC3E4E0CE5DA0ED4"]
    recs = [rec for rec in world.Resources(root) if rec["minor"] is not None]
    for rec in sorted(recs, key=lambda r: r["minor"]):
        view = world.View(rec)
        proto = rec["net"]["protocol"] if rec.get("net") else " "
        lines.append(f"{rec['minor']:2d}: cs:{view['cs']} ro:{view['role']}/"
                     f"{view['peer_role']} ds:{view['ds']}/{view['peer_ds']} {proto} r-----")
        lines.append(f"    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f"
                     f" oos:{view['oos']}")
        if view["sync"]:
            lines.extend(_SyncLines(view["sync"], world.rate_kib))
    return "\n".join(lines) + "\n"


def _ShowAddress(endpoint: str) -> str:
    family, rest = endpoint.split(":", 1)
    return f"{family} {rest}"


def RenderShow(rec: dict[str, Any]) -> str:
    """``drbdsetup show`` (8.4) of one resource."""
    out = [f"resource {rec['name']} {{", "    options {", "    }", "    net {"]
    net = rec.get("net")
    for key, value in sorted((net or {}).get("options", {}).items()):
        shown = f'"{value}"' if key in _QUOTED_OPTIONS else value
        out.append(f"        {key:<24}{shown};")
    out.append("    }")
    if net:
        out += ["    _remote_host {", f"        address                 "
                f"{_ShowAddress(net['remote'])};", "    }"]
    out.append("    _this_host {")
    if net:
        out.append(f"        address                 {_ShowAddress(net['local'])};")
    if rec["minor"] is not None:
        out += ["        volume 0 {", f"            device                      minor"
                f" {rec['minor']};"]
        disk = rec.get("disk")
        if disk:
            out += [f'            disk                        "{disk["backing"]}";',
                    f'            meta-disk                   "{disk["meta"]}"'
                    f' [ {disk["index"]} ];', "            disk {",
                    f"                size                    {rec['size_kib'] * 2}s;"
                    " # bytes"]
            for key, value in sorted(disk["options"].items()):
                if key != "size":
                    out.append(f"                {key:<24}{value};")
            out.append("            }")
        out.append("        }")
    out += ["    }", "}"]
    return "\n".join(out) + "\n"


def RenderStatus(world: World, recs: list[dict[str, Any]], verbose: bool,
                 statistics: bool) -> str:
    """``drbdsetup status`` in DRBD 9's format."""
    out = []
    for rec in recs:
        view = world.View(rec)
        out.append(f"{rec['name']} role:{view['role']}" + (" suspended:no" if verbose else ""))
        if statistics:
            out.append("    write-ordering:flush")
        if rec["minor"] is not None:
            head = f"volume:0 minor:{rec['minor']} " if verbose else ""
            out.append(f"  {head}disk:{view['ds']}")
            if statistics:
                out.append(f"      size:{rec['size_kib']} read:0 written:0 al-writes:0"
                           " bm-writes:0 upper-pending:0 lower-pending:0 al-suspended:no"
                           " blocked:no")
        if not rec.get("net"):
            out.append("")
            continue
        cstate = {"WFConnection": "Connecting", "StandAlone": "StandAlone"}.get(
            view["cs"], "Connected")
        line = f"  {view['peer_name']} connection:{cstate}"
        if cstate == "Connected":
            line += f" role:{view['peer_role']}"
        out.append(line)
        if cstate == "Connected" and rec["minor"] is not None:
            repl = view["cs"] if view["sync"] else "Established"
            peer = f"    volume:0 replication:{repl} peer-disk:{view['peer_ds']}"
            if view["sync"]:
                peer += f" done:{view['sync']['percent']:.2f}"
            out.append(peer)
            if statistics:
                out.append(f"        received:0 sent:0 out-of-sync:{view['oos']} pending:0"
                           " unacked:0")
        out.append("")
    return "\n".join(out)


# --- the commands -------------------------------------------------------------------------

def _MinorArg(prog: str, value: str) -> int:
    if not value.isdigit() or int(value) > 2 ** 20 - 1:
        raise Usage(prog, f"invalid minor '{value}'")
    return int(value)


def _Device(world: World, minor: int) -> dict[str, Any]:
    rec = world.ByMinor(world.root, minor)
    if rec is None:
        raise Failure(minor, 127, "Device minor not allocated")
    return rec


def _Resource(world: World, name: str) -> dict[str, Any]:
    rec = world.Load(world.root, name) if _NAME_RE.match(name) else None
    if rec is None:
        raise Failure(name, 158, "Unknown resource")
    return rec


def _SaveMeta(world: World, rec: dict[str, Any], state: str | None = None) -> None:
    disk = rec["disk"]
    key = disk["meta"] if disk["index"].isdigit() else disk["backing"]
    dstate = state or rec["dstate"]
    world.Meta()["disks"][key] = {
        "state": "Inconsistent" if dstate == "Diskless" else dstate,
        "size_kib": rec["size_kib"]}
    world.StoreMeta()


def CmdNewResource(world: World, prog: str, args: list[str]) -> str:
    (name,), _ = ParseArgs(prog, args, 1, {"cpu-mask": _STR, "on-no-data-accessible":
                                           ("io-error", "suspend-io")})
    if not _NAME_RE.match(name):
        raise Usage(prog, f"invalid resource name '{name}'")
    if world.Load(world.root, name) is None:
        world.Store(world.root, {"name": name, "minor": None, "disk": None,
                                 "dstate": "Diskless", "role": "Secondary", "net": None,
                                 "size_kib": 0, "sync": None})
    return ""


def CmdNewMinor(world: World, prog: str, args: list[str]) -> str:
    (name, minor_arg, volume), _ = ParseArgs(prog, args, 3, {})
    minor = _MinorArg(prog, minor_arg)
    rec = _Resource(world, name)
    if volume != "0":
        raise Usage(prog, f"volume '{volume}': the stand-in models volume 0 only")
    if rec["minor"] is not None or world.ByMinor(world.root, minor) is not None:
        raise Failure(minor, 161, "Minor or volume exists already (delete it first)")
    rec["minor"] = minor
    world.Store(world.root, rec)
    return ""


def CmdAttach(world: World, prog: str, args: list[str]) -> str:
    (minor_arg, lower, meta, index), opts = ParseArgs(prog, args, 4, DISK_OPTIONS)
    minor = _MinorArg(prog, minor_arg)
    if not (index.isdigit() or index in ("internal", "flexible")):
        raise Usage(prog, f"invalid meta data index '{index}'")
    rec = _Device(world, minor)
    if rec["disk"]:
        raise Failure(minor, 124, "Device is attached to a disk (use detach first)")
    for other in world.Resources(world.root):
        if other["disk"] and {lower, meta} & {other["disk"]["backing"],
                                              other["disk"]["meta"]}:
            raise Failure(minor, 114, "Lower device is already claimed. This usually"
                          " means it is mounted.")
    md = world.Meta()["disks"].get(meta if index.isdigit() else lower)
    if md is None:
        raise Failure(minor, 119, "No valid meta data found")
    if "size" in opts:
        size_kib = ParseSize(prog, opts["size"]) // 1024
    elif os.path.isfile(lower):
        size_kib = os.path.getsize(lower) // 1024
    else:
        size_kib = md["size_kib"]
    rec.update(disk={"backing": lower, "meta": meta, "index": index, "options": opts},
               dstate=md["state"], size_kib=size_kib, sync=None)
    world.Store(world.root, rec)
    return ""


def CmdConnect(world: World, prog: str, args: list[str]) -> str:
    (name, local_arg, remote_arg), opts = ParseArgs(prog, args, 3, NET_OPTIONS)
    local, remote = ParseAddress(prog, local_arg), ParseAddress(prog, remote_arg)
    if local == remote or local.split(":")[0] != remote.split(":")[0]:
        raise Usage(prog, "the local and remote address must differ, in one family")
    rec = _Resource(world, name)
    if rec["net"]:
        raise Failure(name, 151, "Connection already configured (disconnect first)")
    if world.Endpoint(local) is not None:
        raise Failure(name, 102, "Local address(port) already in use.")
    if any(other["net"] and other["net"]["remote"] == remote
           for other in world.Resources(world.root)):
        raise Failure(name, 103, "Remote address(port) already in use.")
    secret = opts.get("shared-secret") if opts.get("cram-hmac-alg") else None
    rec["net"] = {"local": local, "remote": remote, "protocol": opts.get("protocol", "C"),
                  "secret": secret, "options": opts,
                  "two_primaries": opts.get("allow-two-primaries") == "yes"}
    world.Register(local, world.root, name)
    world.Store(world.root, rec)
    return ""


def CmdDisconnect(world: World, prog: str, args: list[str]) -> str:
    (local_arg, remote_arg), _ = ParseArgs(prog, args, 2, {"force": _FLAG})
    local, remote = ParseAddress(prog, local_arg), ParseAddress(prog, remote_arg)
    rec = next((r for r in world.Resources(world.root)
                if r["net"] and (r["net"]["local"], r["net"]["remote"]) == (local, remote)),
               None)
    if rec is None:
        raise Failure(f"{local_arg} {remote_arg}", 158, "Unknown connection")
    world.Unregister(local)
    rec.update(net=None, sync=None)
    world.Store(world.root, rec)
    return ""


def CmdDetach(world: World, prog: str, args: list[str]) -> str:
    (minor_arg,), opts = ParseArgs(prog, args, 1, {"force": _FLAG})
    minor = _MinorArg(prog, minor_arg)
    rec = _Device(world, minor)
    if not rec["disk"]:
        return ""
    _, peer = world.Connection(rec)
    if rec["role"] == "Primary" and "force" not in opts and \
            not (peer and peer[1]["dstate"] == "UpToDate"):
        raise StateFailure(minor, -2, "Need access to UpToDate data")
    _SaveMeta(world, rec)
    rec.update(disk=None, dstate="Diskless", sync=None)
    world.Store(world.root, rec)
    return ""


def CmdDown(world: World, prog: str, args: list[str]) -> str:
    (name,), _ = ParseArgs(prog, args, 1, {})
    rec = _Resource(world, name)
    if rec["disk"]:
        _SaveMeta(world, rec)
    if rec["net"]:
        world.Unregister(rec["net"]["local"])
    world.Store(world.root, None, name)
    return ""


def CmdPrimary(world: World, prog: str, args: list[str]) -> str:
    (minor_arg,), opts = ParseArgs(prog, args, 1, {"force": _FLAG})
    minor = _MinorArg(prog, minor_arg)
    rec = _Device(world, minor)
    _, peer = world.Connection(rec)
    if peer is not None and peer[1]["role"] == "Primary" and \
            not (rec["net"]["two_primaries"] and peer[1]["net"]["two_primaries"]):
        raise StateFailure(minor, -1, "Multiple primaries not allowed by config")
    if rec["dstate"] != "UpToDate":
        if "force" in opts and rec["disk"]:
            rec.update(dstate="UpToDate", sync=None)
        elif not (peer and peer[1]["dstate"] == "UpToDate"):
            raise StateFailure(minor, -2, "Need access to UpToDate data")
    rec["role"] = "Primary"
    world.Store(world.root, rec)
    return ""


def CmdSecondary(world: World, prog: str, args: list[str]) -> str:
    (minor_arg,), _ = ParseArgs(prog, args, 1, {})
    rec = _Device(world, _MinorArg(prog, minor_arg))
    rec["role"] = "Secondary"
    world.Store(world.root, rec)
    return ""


def CmdResize(world: World, prog: str, args: list[str]) -> str:
    (minor_arg,), opts = ParseArgs(prog, args, 1, {
        "size": _NUM, "assume-peer-has-space": _FLAG, "assume-clean": _FLAG})
    minor = _MinorArg(prog, minor_arg)
    rec = _Device(world, minor)
    if not rec["disk"]:
        raise Failure(minor, 138, "Device does not have a disk")
    if "size" in opts:
        size_kib = ParseSize(prog, opts["size"]) // 1024
    elif os.path.isfile(rec["disk"]["backing"]):
        size_kib = os.path.getsize(rec["disk"]["backing"]) // 1024
    else:
        size_kib = rec["size_kib"]
    _, peer = world.Connection(rec)
    if peer is not None and peer[1]["disk"]:
        peer[1]["size_kib"] = size_kib
        world.Store(peer[0], peer[1])
    rec["size_kib"] = size_kib
    world.Store(world.root, rec)
    return ""


def CmdShow(world: World, prog: str, args: list[str]) -> str:
    (what,), _ = ParseArgs(prog, args, 1, {})
    if what == "all":
        recs = world.Resources(world.root)
    elif what.isdigit():
        recs = [_Device(world, _MinorArg(prog, what))]
    else:
        recs = [_Resource(world, what)]
    return "\n".join(RenderShow(rec) for rec in recs)


def CmdStatus(world: World, prog: str, args: list[str]) -> str:
    names, opts = ParseArgs(prog, args, (0, 1), {"verbose": _FLAG, "statistics": _FLAG,
                                                  "color": ("always", "auto", "never")})
    recs = [_Resource(world, names[0])] if names else world.Resources(world.root)
    return RenderStatus(world, recs, "verbose" in opts, "statistics" in opts)


DRBDSETUP_COMMANDS = {
    "new-resource": CmdNewResource, "new-minor": CmdNewMinor, "attach": CmdAttach,
    "connect": CmdConnect, "disconnect": CmdDisconnect, "detach": CmdDetach,
    "down": CmdDown, "primary": CmdPrimary, "secondary": CmdSecondary,
    "resize": CmdResize, "show": CmdShow, "status": CmdStatus,
}


def Drbdsetup(world: World, argv: list[str]) -> str:
    if not argv or argv[0] not in DRBDSETUP_COMMANDS:
        raise Usage("drbdsetup", f"unknown command '{argv[0] if argv else ''}' (the stand-in"
                    f" knows: {', '.join(sorted(DRBDSETUP_COMMANDS))})")
    return DRBDSETUP_COMMANDS[argv[0]](world, f"drbdsetup {argv[0]}", argv[1:])


def Drbdmeta(world: World, argv: list[str]) -> str:
    """``drbdmeta [--force] DEVICE v08 META_DEV INDEX create-md``."""
    prog = "drbdmeta"
    args = list(argv)
    force = bool(args) and args[0] == "--force"
    if force:
        args.pop(0)
    if len(args) != 5 or args[1] != "v08" or args[4] != "create-md":
        raise Usage(prog, "the stand-in only runs '[--force] DEVICE v08 META_DEV INDEX"
                    f" create-md', not '{' '.join(argv)}'")
    device, _, meta, index, _ = args
    minor = _MinorArg(prog, device.removeprefix("/dev/drbd"))
    if not (index.isdigit() or index == "internal"):
        raise Usage(prog, f"invalid meta data index '{index}'")
    for rec in world.Resources(world.root):
        if rec["disk"] and (rec["minor"] == minor or meta in (rec["disk"]["meta"],
                                                              rec["disk"]["backing"])):
            raise StandinError(USAGE_EXIT, f"Device '{meta}' is in use by minor"
                               f" {rec['minor']} (configured!)")
    disks = world.Meta()["disks"]
    if meta in disks and not force:
        raise StandinError(USAGE_EXIT, f"{meta} holds DRBD meta data; the stand-in asks"
                           " no questions: use --force to overwrite it")
    disks[meta] = {"state": "Inconsistent", "size_kib": 0}
    world.StoreMeta()
    return "Writing meta data...\nNew drbd meta data block successfully created.\n"


def StandinCtl(world: World, argv: list[str]) -> str:
    """Stand-in-only actions: ``fail-disk MINOR`` (an I/O error on the
    local disk: DRBD detaches it, the device is Diskless)."""
    prog = "drbdsetup-standin-ctl"
    if argv[:1] != ["fail-disk"]:
        raise Usage(prog, "usage: drbdsetup-standin-ctl fail-disk MINOR")
    (minor_arg,), _ = ParseArgs(prog, argv[1:], 1, {})
    minor = _MinorArg(prog, minor_arg)
    rec = _Device(world, minor)
    if not rec["disk"]:
        raise Failure(minor, 138, "Device does not have a disk")
    _SaveMeta(world, rec, "Inconsistent")
    rec.update(disk=None, dstate="Diskless", sync=None)
    world.Store(world.root, rec)
    return f"minor {minor}: local disk failed, detached (now Diskless)\n"


PROGRAMS = {"drbdsetup": Drbdsetup, "drbdmeta": Drbdmeta,
            "drbdsetup-standin-ctl": StandinCtl}


def _WriteIfChanged(path: str, data: str) -> None:
    try:
        with open(path) as handle:
            if handle.read() == data:
                return
    except FileNotFoundError:
        pass
    _WriteAtomic(path, data)


def _WriteNodeFiles(world: World, root: str, version: str) -> None:
    _WriteIfChanged(os.path.join(root, "proc/drbd"), RenderProc(world, root, version))
    _WriteIfChanged(os.path.join(root, "sys/module/drbd/parameters/usermode_helper"),
                    USERMODE_HELPER + "\n")


def _Peers(world: World, root: str) -> set[str]:
    """The roots of the nodes whose devices ``root``'s devices point at."""
    return {peer[0] for rec in world.Resources(root) if (peer := world.Peer(rec)) is not None}


def Main(program: str, argv: list[str]) -> int:
    """Run ``program`` (drbdsetup, drbdmeta, drbdsetup-standin-ctl)."""
    root = os.environ.get("GANETI_ROOTDIR", "")
    if not root or not os.path.isabs(root) or os.path.normpath(root) == "/":
        sys.stderr.write(f"{program} (DRBD stand-in): GANETI_ROOTDIR is not set to a node"
                         " root; the stand-in only serves virtual cluster nodes and never"
                         " touches a real one\n")
        return USAGE_EXIT
    root = os.path.normpath(root)
    shared = os.environ.get("DRBD_STANDIN_SHARED") or \
        os.path.join(os.path.dirname(root), "drbd-standin")
    try:
        now = float(os.environ.get("DRBD_STANDIN_TIME") or time.time())
        rate = float(os.environ.get("DRBD_STANDIN_SYNC_MIB_S") or DEFAULT_SYNC_MIB_S)
    except ValueError as err:
        sys.stderr.write(f"{program} (DRBD stand-in): bad environment: {err}\n")
        return USAGE_EXIT
    version = os.environ.get("DRBD_STANDIN_KERNEL_VERSION") or DEFAULT_VERSION
    os.makedirs(shared, exist_ok=True)
    with open(os.path.join(shared, ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        world = World(root, shared, now, max(rate, 0.001) * 1024)
        # the peers before the command too: a disconnect changes what they show
        roots = {root} | _Peers(world, root)
        # the kernel's state is current when a command runs
        for node in sorted(roots):
            world.Settle(node)
        error = None
        try:
            output = PROGRAMS[program](world, argv)
        except StandinError as err:
            output, error = "", err
            world = World(root, shared, now, world.rate_kib)
        roots |= world.Settle(root) | _Peers(world, root)
        for node in sorted(roots - {root}):
            world.Settle(node)
        world.Flush()
        for node in sorted(roots):
            _WriteNodeFiles(world, node, version)
    sys.stdout.write(output)
    if error is not None:
        sys.stderr.write(error.text + "\n")
        return error.code
    return 0
