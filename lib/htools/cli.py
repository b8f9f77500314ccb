"""The command-line options the htools share, and loading the cluster.

``add_backend_options(parser)`` adds the options of htools(1) "COMMON
OPTIONS": the backends (``-L [SOCKET]``, ``-m CLUSTER``, ``-t FILE``,
``-I FILE``, ``--simulate SPEC``, repeatable), ``-G GROUP``, ``-O NODE``
(repeatable, or comma-separated), ``--ignore-dynu``, ``-p [FIELDS]``,
``-S FILE``, ``-v``/``-q`` and ``-V``. ``load_cluster(opts)`` then loads
the cluster from the one backend given (the master's default luxi socket
when none is, as ``-L``), marks the ``-O`` nodes offline, zeroes the
dynamic utilisation with ``--ignore-dynu`` and checks that ``-G`` names a
group (``select_group`` resolves it for the tools that work on one group).
Every failure is a ``LoadError`` whose text names the bad value.

The parsed options (``argparse.Namespace``), as the tools read them:

=================  ==============================================
``luxi``           None, ``""`` (default socket) or a socket path
``rapi``           None or the ``-m`` cluster
``text_data``      None or the ``-t`` file
``ialloc_src``     None or the ``-I`` file
``simulate``       None or the list of ``--simulate`` descriptions
``group``          None or the ``-G`` group (name or UUID)
``offline``        list of the ``-O`` node names
``ignore_dynu``    bool
``print_nodes``    None (no ``-p``), ``""`` (default fields) or FIELDS
``save_cluster``   None or the ``-S`` file name prefix
``verbose``        the verbosity: 1, plus one per ``-v``, minus one per ``-q``
=================  ==============================================
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Sequence
from typing import Any

from ganeti import __version__
from ganeti.htools import (loader_iallocator, loader_luxi, loader_rapi, loader_simu,
                           loader_text, printer)
from ganeti.htools.loader_iallocator import InputError
from ganeti.htools.model import Cluster, Group

#: (option shown in messages, attribute of the parsed options)
BACKENDS = (("-L", "luxi"), ("-m", "rapi"), ("-t", "text_data"),
            ("-I", "ialloc_src"), ("--simulate", "simulate"))


class LoadError(Exception):
    """The cluster could not be loaded, or an option names something that
    does not exist; the text says which value is wrong."""


class _Quieter(argparse.Action):
    """``-q``: one less verbosity (shares ``verbose`` with ``-v``)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("default", argparse.SUPPRESS)
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, getattr(namespace, self.dest, 1) - 1)


def add_verbosity_options(parser: argparse.ArgumentParser) -> None:
    """``-v``/``--verbose`` and ``-q``/``--quiet`` into ``opts.verbose``."""
    parser.add_argument("-v", "--verbose", action="count", default=1,
                        help="increase the verbosity (repeatable)")
    parser.add_argument("-q", "--quiet", action=_Quieter, dest="verbose",
                        help="decrease the verbosity (repeatable)")


def add_version_option(parser: argparse.ArgumentParser) -> None:
    """``-V``/``--version``."""
    parser.add_argument("-V", "--version", action="version",
                        version=f"{parser.prog} (ganeti) version {__version__}")


def add_print_nodes_option(parser: argparse.ArgumentParser) -> None:
    """``-p``/``--print-nodes [FIELDS]``."""
    parser.add_argument("-p", "--print-nodes", nargs="?", const="", default=None,
                        metavar="FIELDS",
                        help="print the node table (optionally a comma-separated"
                        " field list, +FIELDS to extend the default one)")


def add_luxi_option(parser: argparse._ActionsContainer) -> None:
    """``-L``/``--luxi [SOCKET]``."""
    parser.add_argument("-L", "--luxi", nargs="?", const="", default=None,
                        metavar="SOCKET",
                        help="read the cluster from the master daemon (luxi), at"
                        " its default socket or SOCKET")


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """Add the htools' common options (see the module doc) to ``parser``."""
    backends = parser.add_argument_group(
        "backends", "where the cluster comes from: one of these (default: -L)")
    add_luxi_option(backends)
    backends.add_argument("-m", dest="rapi", metavar="CLUSTER",
                          help="read the cluster through RAPI: host, host:port or"
                          " https://host[:port]")
    backends.add_argument("-t", "--text-data", metavar="FILE",
                          help="read the cluster from an htools text data file")
    backends.add_argument("-I", "--ialloc-src", metavar="FILE",
                          help="read the cluster from an iallocator request")
    backends.add_argument("--simulate", action="append", metavar="SPEC",
                          help="simulate an empty cluster: one group of"
                          " policy,nodes,disk,memory,cpus[,spindles]; repeatable")
    parser.add_argument("-G", "--group", metavar="GROUP",
                        help="work on this node group (name or UUID)")
    parser.add_argument("-O", "--offline", action="append", default=[],
                        metavar="NODE", help="take NODE as offline (repeatable, or"
                        " a comma-separated list)")
    parser.add_argument("--ignore-dynu", action="store_true",
                        help="ignore the dynamic utilisation data (take it as zero)")
    add_print_nodes_option(parser)
    parser.add_argument("-S", "--save-cluster", "--save", dest="save_cluster",
                        metavar="FILE", help="save the cluster state to FILE.<stage>"
                        " in the text format")
    add_verbosity_options(parser)
    add_version_option(parser)


#: Options whose value is optional: as in Ganeti's htools, it must be
#: attached (``-pFIELDS``, ``--print-nodes=FIELDS``, ``-L/path``)
OPTIONAL_VALUE_OPTIONS = ("-p", "--print-nodes", "-L", "--luxi")


def attached_values_only(argv: Sequence[str]) -> list[str]:
    """``argv`` with the options of optional value that stand alone made
    explicit (``-p`` becomes ``--print-nodes=``), so that the next word
    stays an argument of its own: ``hscan -p cluster1`` scans cluster1.
    Tools with positional arguments parse this instead of ``argv``."""
    long_names = {"-p": "--print-nodes", "-L": "--luxi"}
    out: list[str] = []
    rest = False
    for arg in argv:
        if not rest and arg in OPTIONAL_VALUE_OPTIONS:
            out.append(long_names.get(arg, arg) + "=")
        else:
            out.append(arg)
            rest = rest or arg == "--"
    return out


def _chosen_backend(opts: argparse.Namespace) -> tuple[str, Any, bool]:
    """(option, value, defaulted) of the backend to read."""
    given = [(flag, getattr(opts, attr, None)) for flag, attr in BACKENDS]
    given = [(flag, value) for flag, value in given
             if value is not None and value != []]
    if len(given) > 1:
        raise LoadError(f"Only one backend may be given, got {len(given)}:"
                        f" {', '.join(flag for flag, _ in given)}")
    if not given:
        return "-L", "", True
    return given[0][0], given[0][1], False


def _load(flag: str, value: Any, defaulted: bool) -> Cluster:
    if flag == "-L":
        try:
            return loader_luxi.load(value or None)
        except loader_luxi.BackendError as err:
            hint = (" (no backend was given, so the local master was asked: use -L,"
                    " -m, -t, -I or --simulate)") if defaulted else ""
            raise LoadError(f"{err}{hint}") from err
        except InputError as err:
            raise LoadError(f"Invalid data from the master daemon: {err}") from err
    if flag == "-m":
        try:
            return loader_rapi.load(value)
        except loader_luxi.BackendError as err:
            raise LoadError(str(err)) from err
        except InputError as err:
            raise LoadError(f"Invalid data from RAPI cluster {value!r}: {err}") from err
    if flag == "--simulate":
        try:
            return loader_simu.build(value)
        except InputError as err:
            raise LoadError(f"Invalid --simulate description: {err}") from err
    try:
        with open(value, encoding="utf-8") as fd:
            text = fd.read()
    except OSError as err:
        raise LoadError(f"Cannot read {flag} file {value}: {err.strerror or err}") \
            from err
    except UnicodeDecodeError as err:
        raise LoadError(f"Cannot read {flag} file {value}: not UTF-8 text ({err})") \
            from err
    try:
        if flag == "-t":
            return loader_text.parse(text)
        return loader_iallocator.load(text)[0]
    except InputError as err:
        raise LoadError(f"Invalid {flag} file {value}: {err}") from err


def offline_names(opts: argparse.Namespace) -> list[str]:
    """The ``-O`` node names, comma-separated lists split."""
    names: list[str] = []
    for value in getattr(opts, "offline", None) or []:
        names.extend(n.strip() for n in value.split(",") if n.strip())
    return names


def find_node(cluster: Cluster, name: str) -> str | None:
    """A node's full name from its full or unique short name (the name up
    to a dot), or None."""
    if name in cluster.nodes:
        return name
    matches = [n for n in cluster.nodes if n.startswith(name + ".")]
    return matches[0] if len(matches) == 1 else None


def apply_offline(cluster: Cluster, names: Iterable[str]) -> None:
    """Mark the named nodes offline.

    @raise LoadError: naming the nodes the cluster does not have
    """
    names = list(names)
    found = {name: find_node(cluster, name) for name in names}
    unknown = [name for name, full in found.items() if full is None]
    if unknown:
        raise LoadError(f"Unknown node(s) given with -O: {', '.join(unknown)}"
                        f" (the cluster has: {', '.join(sorted(cluster.nodes)) or 'none'})")
    for full in found.values():
        assert full is not None
        cluster.nodes[full].offline = True


def ignore_dynamic_utilisation(cluster: Cluster) -> None:
    """Take every node's and instance's dynamic load as zero."""
    zero = (0.0, 0.0, 0.0, 0.0)
    for inst in cluster.instances.values():
        inst.util = zero
    for node in cluster.nodes.values():
        node.util = zero


def _group_names(cluster: Cluster) -> str:
    return ", ".join(sorted(g.name for g in cluster.groups.values())) or "none"


def select_group(cluster: Cluster, opts: argparse.Namespace) -> Group | None:
    """The group ``-G`` names (by name or UUID); without ``-G``, the one
    group that has nodes, or None when several have (a tool working on one
    group then asks for ``-G``).

    @raise LoadError: if ``-G`` names no group of the cluster
    """
    key = getattr(opts, "group", None)
    if key:
        group = cluster.find_group(key)
        if group is None:
            raise LoadError(f"Unknown node group {key!r} given with -G (the cluster"
                            f" has: {_group_names(cluster)})")
        return group
    used = {node.group for node in cluster.nodes.values()}
    if len(used) == 1:
        return cluster.groups.get(used.pop())
    if not used and len(cluster.groups) == 1:
        return next(iter(cluster.groups.values()))
    return None


def node_fields(opts: argparse.Namespace) -> list[str] | None:
    """The fields of ``-p`` (None without ``-p``).

    @raise LoadError: for an unknown field
    """
    spec = getattr(opts, "print_nodes", None)
    if spec is None:
        return None
    try:
        return printer.parse_fields(spec)
    except ValueError as err:
        raise LoadError(f"Invalid -p field list {spec!r}: {err}") from err


def load_cluster(opts: argparse.Namespace) -> Cluster:
    """Load the cluster as the options say (see the module doc).

    @raise LoadError: for conflicting or bad options, an unreadable or
        malformed input, or a master or RAPI that cannot be reached
    """
    node_fields(opts)  # a bad -p fails before a long load
    flag, value, defaulted = _chosen_backend(opts)
    cluster = _load(flag, value, defaulted)
    if getattr(opts, "ignore_dynu", False):
        ignore_dynamic_utilisation(cluster)
    apply_offline(cluster, offline_names(opts))
    if getattr(opts, "group", None):
        select_group(cluster, opts)
    return cluster


def save_cluster(cluster: Cluster, path: str) -> None:
    """Write the cluster in the text format (``-t`` reads it back).

    @raise LoadError: if the file cannot be written
    """
    from ganeti import utils
    try:
        utils.WriteFile(os.path.abspath(path), data=loader_text.serialize(cluster),
                        mode=0o644)
    except OSError as err:
        raise LoadError(f"Cannot save the cluster to {path}:"
                        f" {err.strerror or err}") from err
