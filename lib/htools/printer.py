"""Human-readable node listings (the htools ``-p`` option)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ganeti.htools.model import Cluster, Node


def _pct(num: float, den: float) -> str:
    return f"{num / den:.4f}" if den else "-"


#: field name -> (header, numeric?, getter); see htools(1), "-p"
NODE_FIELDS: dict[str, tuple[str, bool, Callable[[Node], str]]] = {
    "F": ("F", False, lambda n: "-" if not n.available else ("*" if n.fail_n1 else " ")),
    "Name": ("Name", False, lambda n: n.name),
    "t_mem": ("t_mem", True, lambda n: str(int(n.t_mem))),
    "n_mem": ("n_mem", True, lambda n: str(n.n_mem)),
    "i_mem": ("i_mem", True, lambda n: str(n.i_mem)),
    "x_mem": ("x_mem", True, lambda n: str(n.x_mem)),
    "f_mem": ("f_mem", True, lambda n: str(n.f_mem)),
    "r_mem": ("r_mem", True, lambda n: str(n.r_mem)),
    "t_dsk": ("t_dsk", True, lambda n: str(int(n.t_dsk))),
    "f_dsk": ("f_dsk", True, lambda n: str(n.f_dsk)),
    "pcpu": ("pcpu", True, lambda n: f"{n.t_cpu:g}"),
    "vcpu": ("vcpu", True, lambda n: str(n.u_cpu)),
    "pcnt": ("pcnt", True, lambda n: str(len(n.plist))),
    "scnt": ("scnt", True, lambda n: str(len(n.slist))),
    "p_fmem": ("p_fmem", True, lambda n: _pct(n.f_mem, n.t_mem)),
    "p_fdsk": ("p_fdsk", True, lambda n: _pct(n.f_dsk, n.t_dsk)),
    "r_cpu": ("r_cpu", True, lambda n: _pct(n.u_cpu, n.t_cpu)),
    "spn": ("spn", True, lambda n: str(n.t_spindles)),
    "i_spn": ("i_spn", True, lambda n: str(n.inst_spindles)),
    "group": ("group", False, lambda n: n.group),
    "tags": ("tags", False, lambda n: ",".join(sorted(n.tags))),
}
DEFAULT_FIELDS = ("F", "Name", "t_mem", "n_mem", "i_mem", "x_mem", "f_mem", "r_mem",
                  "t_dsk", "f_dsk", "pcpu", "vcpu", "pcnt", "scnt", "p_fmem",
                  "p_fdsk", "r_cpu")


def parse_fields(spec: str | None) -> list[str]:
    """The field list of a ``-p`` argument: none, ``a,b`` or ``+a,b``.

    @raise ValueError: for an unknown field
    """
    if not spec:
        return list(DEFAULT_FIELDS)
    extra = spec.startswith("+")
    names = [f for f in spec.lstrip("+").split(",") if f]
    unknown = [f for f in names if f not in NODE_FIELDS]
    if unknown:
        raise ValueError(f"Unknown node field(s): {', '.join(unknown)}; known:"
                         f" {', '.join(NODE_FIELDS)}")
    return list(DEFAULT_FIELDS) + names if extra else names


def format_table(rows: Sequence[Sequence[str]], numeric: Sequence[bool]) -> str:
    """Align columns: numbers to the right, text to the left."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(numeric))]
    out = []
    for row in rows:
        cells = [c.rjust(w) if num else c.ljust(w)
                 for c, w, num in zip(row, widths, numeric)]
        out.append(" ".join(cells).rstrip())
    return "\n".join(out) + "\n"


def format_nodes(cluster: Cluster, fields: Sequence[str] | None = None,
                 nodes: Sequence[Node] | None = None) -> str:
    """The node table of ``cluster`` (or of ``nodes``)."""
    fields = list(fields or DEFAULT_FIELDS)
    nodes = sorted(cluster.nodes.values(), key=lambda n: n.name) if nodes is None \
        else nodes
    rows = [[NODE_FIELDS[f][0] for f in fields]]
    rows += [[NODE_FIELDS[f][2](n) for f in fields] for n in nodes]
    return format_table(rows, [NODE_FIELDS[f][1] for f in fields])
