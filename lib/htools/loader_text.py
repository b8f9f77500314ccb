"""htools' text format (the ``-t`` data files), read and written.

Sections, in order, separated by one empty line (an empty section is thus
two consecutive empty lines); columns are separated by ``|`` and lists
inside a column by commas (htools(1)):

1. groups: name, UUID, allocation policy, tags, networks
2. nodes: name, total memory, node memory, free memory, total disk, free
   disk, physical CPUs, ``Y`` (offline) / ``N`` / ``M`` (master), group
   UUID, spindles, tags, exclusive storage (``Y``/``N``), free spindles,
   CPUs used by the node OS, relative CPU speed, and optionally storage
   units (``free,total,type,key`` separated by ``;``)
3. instances: name, memory, disk, vCPUs, status (``running``,
   ``ADMIN_down``, ...), auto_balance (``Y``/``N``), primary, secondary
   (may be empty), disk template, tags, spindle use, disk spindles (``-``
   without exclusive storage), forthcoming (``Y``/``N``)
4. cluster tags, one per line
5. instance policies: owner (empty for the cluster, else a group name),
   std spec, ``min;max`` specs (repeatable), disk templates, vCPU ratio,
   spindle ratio; a spec is memory,cpus,disk size,disks,nics,spindle use

Older files with fewer trailing columns load with defaults; a ``?`` in a
node's numeric columns marks it offline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from ganeti import constants
from ganeti.htools import model
from ganeti.htools.loader_iallocator import InputError
from ganeti.htools.policy import IPolicy, ISpec

#: instance status (Ganeti's run states) -> admin state
STATUS_TO_ADMIN = {
    constants.INSTST_RUNNING: constants.ADMINST_UP,
    constants.INSTST_ERRORUP: constants.ADMINST_UP,
    constants.INSTST_ADMINDOWN: constants.ADMINST_DOWN,
    constants.INSTST_ERRORDOWN: constants.ADMINST_DOWN,
    constants.INSTST_USERDOWN: constants.ADMINST_DOWN,
    constants.INSTST_NODEDOWN: constants.ADMINST_DOWN,
    constants.INSTST_NODEOFFLINE: constants.ADMINST_DOWN,
    constants.INSTST_WRONGNODE: constants.ADMINST_DOWN,
    constants.INSTST_ADMINOFFLINE: constants.ADMINST_OFFLINE,
}
ADMIN_TO_STATUS = {
    constants.ADMINST_UP: constants.INSTST_RUNNING,
    constants.ADMINST_DOWN: constants.INSTST_ADMINDOWN,
    constants.ADMINST_OFFLINE: constants.INSTST_ADMINOFFLINE,
}


def _split_list(text: str) -> list[str]:
    return [x for x in text.split(",") if x]


def _number(text: str, where: str, what: str) -> float:
    try:
        val = float(text)
    except ValueError:
        raise InputError(f"{where}: {what} must be a number, got {text!r}") from None
    if val < 0 or val != val:
        raise InputError(f"{where}: {what} must not be negative, got {text!r}")
    return val


def _int(text: str, where: str, what: str) -> int:
    return int(_number(text, where, what))


def _flag(text: str, where: str, what: str) -> bool:
    if text not in ("Y", "N"):
        raise InputError(f"{where}: {what} must be Y or N, got {text!r}")
    return text == "Y"


def _sections(text: str) -> list[list[tuple[int, str]]]:
    """The sections of the file: (line number in the file, line) each."""
    sections: list[list[tuple[int, str]]] = [[]]
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            sections[-1].append((number, line))
        else:
            sections.append([])
    while len(sections) > 5 and not sections[-1]:
        sections.pop()
    if len(sections) == 4:
        # a missing tags section: policy lines (tags never hold "|") follow
        # the instances directly
        tags = [t for t in sections[3] if "|" not in t[1]]
        sections = sections[:3] + [tags, [t for t in sections[3] if "|" in t[1]]]
    if len(sections) != 5:
        raise InputError(f"Invalid format of the input file: {len(sections)} sections"
                         " instead of 4 or 5")
    return sections


def _parse_spec(text: str, where: str) -> ISpec:
    parts = text.split(",")
    if len(parts) not in (5, 6):
        raise InputError(f"{where}: a spec needs 5 or 6 comma-separated values,"
                         f" got {text!r}")
    return ISpec.from_values([_int(p, where, "spec value") for p in parts])


def _parse_policy(line: str, base: IPolicy, lineno: int) -> tuple[str, IPolicy]:
    fields = line.split("|")
    where = f"ipolicy line {lineno}"
    if (len(fields) == 7 and ";" not in fields[2]
            and all(p.isdigit() for p in fields[3].split(","))):
        # older files: owner|std|min|max|templates|vcpu|spindle
        fields = [fields[0], fields[1], f"{fields[2]};{fields[3]}"] + fields[4:]
    if len(fields) not in (6, 7):
        raise InputError(f"{where}: expected 6 or 7 fields, got {len(fields)}")
    owner = fields[0]
    where = f"ipolicy of {owner or 'the cluster'}"
    std = _parse_spec(fields[1], where + " std")
    specs = fields[2].split(";")
    if len(specs) % 2:
        raise InputError(f"{where}: min and max specs must come in pairs")
    minmax = [(_parse_spec(specs[i], where + " min"),
               _parse_spec(specs[i + 1], where + " max"))
              for i in range(0, len(specs), 2)]
    templates = tuple(_split_list(fields[3]))
    for tmpl in templates:
        if tmpl not in constants.DISK_TEMPLATES:
            raise InputError(f"{where}: unknown disk template {tmpl!r}")
    mem_ratio = _number(fields[6], where, "memory ratio") if len(fields) > 6 \
        else base.memory_ratio
    return owner, IPolicy(minmax, std, templates,
                          _number(fields[4], where, "vcpu ratio"),
                          _number(fields[5], where, "spindle ratio"), mem_ratio)


def _parse_storage(text: str, where: str) -> list[model.StorageUnit]:
    units = []
    for item in text.split(";"):
        if not item:
            continue
        parts = item.split(",")
        if len(parts) < 4:
            raise InputError(f"{where}: storage unit must be free,total,type,key,"
                             f" got {item!r}")
        units.append(model.StorageUnit(parts[2], parts[3],
                                       _int(parts[0], where, "storage free"),
                                       _int(parts[1], where, "storage total"),
                                       tuple(parts[4:])))
    return units


def _parse_node(fields: list[str], cluster: model.Cluster, lineno: int) -> model.Node:
    where = f"node line {lineno}"
    if len(fields) < 8:
        raise InputError(f"{where}: invalid/incomplete node data {'|'.join(fields)!r}")
    name = fields[0]
    where = f"node '{name}'"
    fields = fields + [""] * (16 - len(fields))
    guuid = fields[8]
    if not guuid and len(cluster.groups) == 1:
        guuid = next(iter(cluster.groups))
    if guuid not in cluster.groups:
        raise InputError(f"{where}: unknown group {guuid!r}")
    excl = fields[11] == "Y"
    unknown = "?" in fields[1:7]
    flag = fields[7]
    if flag not in ("Y", "N", "M", "D"):
        raise InputError(f"{where}: offline/role flag must be Y, N or M, got {flag!r}")

    def num(idx: int, what: str) -> float:
        return 0.0 if unknown else _number(fields[idx], where, what)

    node = model.Node(
        name=name, group=guuid,
        t_mem=num(1, "total memory"), n_mem=int(num(2, "node memory")),
        f_mem=int(num(3, "free memory")), t_dsk=num(4, "total disk"),
        f_dsk=int(num(5, "free disk")), t_cpu=num(6, "CPU count"),
        n_cpu=_int(fields[13], where, "node CPUs") if fields[13] else 0,
        t_spindles=_int(fields[9], where, "spindles") if fields[9] else 1,
        f_spindles=_int(fields[12], where, "free spindles") if fields[12] else 0,
        exclusive_storage=excl,
        cpu_speed=(_number(fields[14], where, "CPU speed") if fields[14] else 1.0) or 1.0,
        offline=unknown or flag == "Y", drained=flag == "D",
        is_master=flag == "M", master_candidate=flag == "M",
        tags=frozenset(_split_list(fields[10])),
        storage=_parse_storage(fields[15], where),
    )
    return node


def _parse_instance(fields: list[str], cluster: model.Cluster, lineno: int) -> None:
    if len(fields) < 9:
        raise InputError(f"instance line {lineno}: invalid/incomplete instance data"
                         f" {'|'.join(fields)!r}")
    name = fields[0]
    where = f"instance '{name}'"
    fields = fields + [""] * (13 - len(fields))
    status = fields[4]
    if status not in STATUS_TO_ADMIN:
        raise InputError(f"{where}: unknown status {status!r}, expected one of"
                         f" {', '.join(sorted(STATUS_TO_ADMIN))}")
    template = fields[8]
    if template not in constants.DISK_TEMPLATES:
        raise InputError(f"{where}: unknown disk template {template!r}")
    pnode, snode = fields[6], fields[7] or None
    for node in (pnode, snode):
        if node is not None and node not in cluster.nodes:
            raise InputError(f"{where}: unknown node {node!r}")
    if pnode == snode:
        raise InputError(f"{where}: same primary and secondary node {pnode}")
    if name in cluster.instances:
        raise InputError(f"{where}: listed twice")
    dsk = _int(fields[2], where, "disk size")
    spindles = None if fields[11] in ("", "-") else _int(fields[11], where, "spindles")
    inst = model.Instance(
        name=name, memory=_int(fields[1], where, "memory"),
        vcpus=_int(fields[3], where, "vcpus"),
        disks=(model.Disk(dsk, spindles),) if dsk or template != constants.DT_DISKLESS
        else (),
        disk_template=template,
        spindle_use=_int(fields[10], where, "spindle use") if fields[10] else 1,
        tags=tuple(_split_list(fields[9])),
        admin_state=STATUS_TO_ADMIN[status],
        auto_balance=_flag(fields[5], where, "auto_balance"),
        forthcoming=fields[12] == "Y",
        disk_space=dsk if template in model.LOCAL_STORAGE_TEMPLATES else 0,
    )
    cluster.prepare_instance(inst)
    cluster.place(inst, pnode, snode, existing=True)


@contextlib.contextmanager
def _at_line(lineno: int) -> Iterator[None]:
    """Name the file's line in an InputError raised for it."""
    try:
        yield
    except InputError as err:
        text = str(err)
        if f"line {lineno}" not in text:
            raise InputError(f"line {lineno}: {text}") from None
        raise


def parse(text: str) -> model.Cluster:
    """Build a cluster model from text data.

    @raise InputError: naming the bad line or field
    """
    glines, nlines, ilines, tag_lines, plines = _sections(text)
    cluster = model.Cluster(tags=[line for _, line in tag_lines])
    policies: dict[str, IPolicy] = {}
    for lineno, line in plines:
        with _at_line(lineno):
            owner, pol = _parse_policy(line, cluster.ipolicy, lineno)
        if owner:
            policies[owner] = pol
        else:
            cluster.ipolicy = pol
    for lineno, line in glines:
        with _at_line(lineno):
            fields = line.split("|")
            if not 3 <= len(fields) <= 5:
                raise InputError(f"group line {lineno}: invalid/incomplete group data"
                                 f" {line!r}")
            fields += [""] * (5 - len(fields))
            name, uuid, apol = fields[:3]
            if apol not in constants.VALID_ALLOC_POLICIES:
                raise InputError(f"group '{name}': unknown allocation policy {apol!r}")
            cluster.add_group(model.Group(uuid, name, apol,
                                          policies.get(name, cluster.ipolicy),
                                          _split_list(fields[4]), _split_list(fields[3])))
    for owner in policies:
        if cluster.find_group(owner) is None:
            raise InputError(f"ipolicy for unknown group {owner!r}")
    for lineno, line in nlines:
        with _at_line(lineno):
            node = _parse_node(line.split("|"), cluster, lineno)
            if node.name in cluster.nodes:
                raise InputError(f"node '{node.name}': listed twice")
        cluster.add_node(node)
    for lineno, line in ilines:
        with _at_line(lineno):
            _parse_instance(line.split("|"), cluster, lineno)
    for node in cluster.nodes.values():
        node.x_mem = int(node.t_mem) - node.n_mem - node.f_mem - node.i_mem
    return cluster


def load(path: str) -> model.Cluster:
    """Read a text data file."""
    with open(path, encoding="utf-8") as fd:
        return parse(fd.read())


def _num(val: float) -> str:
    return str(int(val)) if float(val).is_integer() else repr(float(val))


def _spec(spec: ISpec) -> str:
    return ",".join(str(v) for v in spec.values())


def _policy_line(owner: str, pol: IPolicy) -> str:
    fields = [owner, _spec(pol.std),
              ";".join(f"{_spec(lo)};{_spec(hi)}" for lo, hi in pol.minmax),
              ",".join(pol.disk_templates), repr(pol.vcpu_ratio), repr(pol.spindle_ratio)]
    if pol.memory_ratio != 1.0:
        fields.append(repr(pol.memory_ratio))
    return "|".join(fields)


def _node_line(cluster: model.Cluster, node: model.Node) -> str:
    # report the node's free memory as it would itself: without the memory
    # reserved for its primaries that are down
    down = sum(cluster.instances[i].memory for i in node.plist
               if cluster.instances[i].uses_memory and not cluster.instances[i].is_running)
    flag = "Y" if not node.available else ("M" if node.is_master else "N")
    fields = [node.name, _num(node.t_mem), str(node.n_mem), str(node.f_mem + down),
              _num(node.t_dsk), str(node.f_dsk), _num(node.t_cpu), flag, node.group,
              str(node.t_spindles), ",".join(sorted(node.tags)),
              "Y" if node.exclusive_storage else "N", str(node.f_spindles),
              str(node.n_cpu), _num(node.cpu_speed)]
    if node.storage:
        fields.append(";".join(f"{u.free},{u.total},{u.kind},{u.key}"
                               + "".join(f",{p}" for p in u.params)
                               for u in node.storage))
    return "|".join(fields)


def _instance_line(inst: model.Instance) -> str:
    spindles = [d.spindles for d in inst.disks if d.spindles is not None]
    fields = [inst.name, str(inst.memory),
              str(inst.disk_space or sum(d.size for d in inst.disks)),
              str(inst.vcpus), ADMIN_TO_STATUS[inst.admin_state],
              "Y" if inst.auto_balance else "N", inst.pnode or "", inst.snode or "",
              inst.disk_template, ",".join(inst.tags), str(inst.spindle_use),
              str(sum(spindles)) if spindles else "-"]
    if inst.forthcoming:
        fields.append("Y")
    return "|".join(fields)


def serialize(cluster: model.Cluster) -> str:
    """The cluster as text data (``parse`` reads it back)."""
    groups = sorted(cluster.groups.values(), key=lambda g: g.name)
    sections: Sequence[list[str]] = (
        [f"{g.name}|{g.uuid}|{g.alloc_policy}|{','.join(g.tags)}|{','.join(g.networks)}"
         for g in groups],
        [_node_line(cluster, n) for n in sorted(cluster.nodes.values(),
                                                key=lambda n: n.name)],
        [_instance_line(i) for i in sorted(cluster.instances.values(),
                                           key=lambda i: i.name)],
        list(cluster.tags),
        [_policy_line("", cluster.ipolicy)]
        + [_policy_line(g.name, g.ipolicy) for g in groups],
    )
    return "\n".join("".join(line + "\n" for line in sec) for sec in sections)
