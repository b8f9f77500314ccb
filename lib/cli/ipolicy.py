"""The instance policy options of gnt-cluster and gnt-group.

Ganeti's options, turned into the ``ipolicy`` dict of the opcodes
(``OpGroupAdd``, ``OpGroupSetParams``, ``OpClusterSetParams``, ...):

- ``--specs-mem-size``, ``--specs-cpu-count``, ``--specs-disk-count``,
  ``--specs-disk-size``, ``--specs-nic-count``: ``min=N,max=N,std=N`` for
  one spec;
- ``--ipolicy-bounds-specs``: ``min:SPEC=N,.../max:SPEC=N,...``, more
  pairs separated by ``//``;
- ``--ipolicy-std-specs``: ``SPEC=N,...``;
- ``--ipolicy-disk-templates``: ``TEMPLATE,...``;
- ``--ipolicy-vcpu-ratio``, ``--ipolicy-spindle-ratio``: a number.

SPEC is one of ``constants.ISPECS_PARAMETERS`` (memory-size, cpu-count,
disk-count, disk-size, nic-count, spindle-use); memory and disk sizes take
units (``512M``, ``2G``). Where ``default`` is allowed (node groups), it
removes the override: the value becomes ``constants.VALUE_DEFAULT``.

The options keep their text; :func:`CreateIPolicyFromOpts` parses it, so
a bad value is an ``OpPrereqError`` naming the option and the value.
A min/max pair built from ``--specs-*`` holds only the values given; the
logical unit fills the rest from the policy in force.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, utils
from ganeti.cli.options import cli_option
from ganeti.objects import FillDict

#: The --specs-* options: (option name, dest, spec)
_SPLIT_SPECS = [
    ("--specs-mem-size", "ispecs_mem_size", constants.ISPEC_MEM_SIZE),
    ("--specs-cpu-count", "ispecs_cpu_count", constants.ISPEC_CPU_COUNT),
    ("--specs-disk-count", "ispecs_disk_count", constants.ISPEC_DISK_COUNT),
    ("--specs-disk-size", "ispecs_disk_size", constants.ISPEC_DISK_SIZE),
    ("--specs-nic-count", "ispecs_nic_count", constants.ISPEC_NIC_COUNT),
]
_SPLIT_KEYS = (constants.ISPECS_MIN, constants.ISPECS_MAX, constants.ISPECS_STD)
_UNIT_SPECS = frozenset([constants.ISPEC_MEM_SIZE, constants.ISPEC_DISK_SIZE])

SPECS_MEM_SIZE_OPT = cli_option(
    "--specs-mem-size", dest="ispecs_mem_size", default=None, metavar="min=N,max=N,std=N",
    help="Memory size limits for instances (min, max, std), in MiB or with a unit")
SPECS_CPU_COUNT_OPT = cli_option(
    "--specs-cpu-count", dest="ispecs_cpu_count", default=None,
    metavar="min=N,max=N,std=N", help="VCPU count limits for instances (min, max, std)")
SPECS_DISK_COUNT_OPT = cli_option(
    "--specs-disk-count", dest="ispecs_disk_count", default=None,
    metavar="min=N,max=N,std=N", help="Disk count limits for instances (min, max, std)")
SPECS_DISK_SIZE_OPT = cli_option(
    "--specs-disk-size", dest="ispecs_disk_size", default=None,
    metavar="min=N,max=N,std=N",
    help="Disk size limits for each disk (min, max, std), in MiB or with a unit")
SPECS_NIC_COUNT_OPT = cli_option(
    "--specs-nic-count", dest="ispecs_nic_count", default=None,
    metavar="min=N,max=N,std=N", help="NIC count limits for instances (min, max, std)")
IPOLICY_BOUNDS_SPECS_OPT = cli_option(
    "--ipolicy-bounds-specs", dest="ipolicy_bounds_specs", default=None,
    metavar="BOUNDS",
    help="Minimum and maximum instance specs: min:SPEC=N,.../max:SPEC=N,..."
    " (further pairs separated by //)")
IPOLICY_STD_SPECS_OPT = cli_option(
    "--ipolicy-std-specs", dest="ipolicy_std_specs", default=None,
    metavar="SPEC=N,...", help="Standard instance specs")
IPOLICY_DISK_TEMPLATES_OPT = cli_option(
    "--ipolicy-disk-templates", dest="ipolicy_disk_templates", default=None,
    metavar="TEMPLATE,...", help="Disk templates allowed by the instance policy")
IPOLICY_VCPU_RATIO_OPT = cli_option(
    "--ipolicy-vcpu-ratio", dest="ipolicy_vcpu_ratio", default=None, metavar="RATIO",
    help="Maximum ratio of virtual to physical CPUs")
IPOLICY_SPINDLE_RATIO_OPT = cli_option(
    "--ipolicy-spindle-ratio", dest="ipolicy_spindle_ratio", default=None,
    metavar="RATIO", help="Maximum ratio of instances to spindles")

#: The --specs-* options
SPLIT_ISPECS_OPTS = [SPECS_MEM_SIZE_OPT, SPECS_CPU_COUNT_OPT, SPECS_DISK_COUNT_OPT,
                     SPECS_DISK_SIZE_OPT, SPECS_NIC_COUNT_OPT]
#: The --ipolicy-* options
IPOLICY_OPTS = [IPOLICY_BOUNDS_SPECS_OPT, IPOLICY_STD_SPECS_OPT,
                IPOLICY_DISK_TEMPLATES_OPT, IPOLICY_VCPU_RATIO_OPT,
                IPOLICY_SPINDLE_RATIO_OPT]
#: Everything, as gnt-group add/modify take them
ALL_IPOLICY_OPTS = SPLIT_ISPECS_OPTS + IPOLICY_OPTS


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def _IsDefault(text: Any) -> bool:
    return isinstance(text, str) and text.strip().lower() == constants.VALUE_DEFAULT


def ParseSpecValue(spec: str, text: Any, where: str) -> int:
    """The value of one instance spec: a non-negative integer (sizes may carry
    a unit); ``where`` names the option in errors."""
    if spec not in constants.ISPECS_PARAMETERS:
        raise _Inval(f"Unknown instance spec '{spec}' in {where} (valid:"
                     f" {', '.join(sorted(constants.ISPECS_PARAMETERS))})")
    try:
        text = str(text).strip()
        if spec in _UNIT_SPECS and not text.lstrip("-").isdigit():
            value = utils.ParseUnit(text)
        else:
            value = int(text)
    except (errors.UnitParseError, ValueError):
        raise _Inval(f"Invalid value '{text}' for {spec} in {where}: expected"
                     " a non-negative integer") from None
    if value < 0:
        raise _Inval(f"Invalid value '{text}' for {spec} in {where}: expected a"
                     " non-negative integer")
    return value


def _SplitPairs(text: str, where: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise _Inval(f"Invalid item '{item}' in {where}: expected key=value")
        key, value = item.split("=", 1)
        pairs.append((key.strip(), value.strip()))
    if not pairs:
        raise _Inval(f"Empty value for {where}")
    return pairs


def ParseSpecs(text: str, where: str) -> dict[str, int]:
    """``SPEC=N,...`` as {spec: value}."""
    return {spec: ParseSpecValue(spec, value, where)
            for spec, value in _SplitPairs(text, where)}


def ParseBoundsSpecs(text: str, where: str = "--ipolicy-bounds-specs"
                     ) -> list[dict[str, dict[str, int]]]:
    """``min:SPEC=N,.../max:SPEC=N,...[//...]`` as the ``minmax`` list."""
    result = []
    for idx, pair_text in enumerate(text.split("//")):
        pair: dict[str, dict[str, int]] = {}
        for part in pair_text.split("/"):
            part = part.strip()
            if ":" not in part:
                raise _Inval(f"Invalid bounds '{part}' in {where} (pair #{idx}):"
                             " expected min:SPEC=N,... or max:SPEC=N,...")
            key, specs = part.split(":", 1)
            key = key.strip()
            if key not in (constants.ISPECS_MIN, constants.ISPECS_MAX):
                raise _Inval(f"Invalid bounds key '{key}' in {where} (pair #{idx}):"
                             " expected min or max")
            if key in pair:
                raise _Inval(f"Bounds key '{key}' given twice in {where}"
                             f" (pair #{idx})")
            pair[key] = ParseSpecs(specs, f"{where} ({key}, pair #{idx})")
        for key in (constants.ISPECS_MIN, constants.ISPECS_MAX):
            if key not in pair:
                raise _Inval(f"Missing '{key}' bounds in {where} (pair #{idx})")
        result.append(pair)
    return result


def ParseRatio(text: str, where: str) -> float:
    """A positive number."""
    try:
        value = float(text)
    except ValueError:
        raise _Inval(f"Invalid value '{text}' for {where}: expected a positive"
                     " number") from None
    if not value > 0 or value == float("inf"):
        raise _Inval(f"Invalid value '{text}' for {where}: expected a positive"
                     " number")
    return value


def CreateIPolicyFromOpts(opts: Any, allow_default: bool = False,
                          fill_all: bool = False) -> dict[str, Any]:
    """The ``ipolicy`` dict of the parsed options (empty if none was given).

    ``allow_default``: accept ``default`` (removing a group's override);
    ``fill_all``: complete the min/max and std specs with Ganeti's defaults
    (for ``gnt-cluster init``).
    """
    def _Get(dest: str) -> Any:
        return getattr(opts, dest, None)

    def _Default(option: str, text: Any) -> bool:
        if not _IsDefault(text):
            return False
        if not allow_default:
            raise _Inval(f"'default' is not allowed for {option} here")
        return True

    ipolicy: dict[str, Any] = {}
    split = {spec: (option, _Get(dest)) for option, dest, spec in _SPLIT_SPECS
             if _Get(dest) is not None}
    bounds = _Get("ipolicy_bounds_specs")
    std = _Get("ipolicy_std_specs")
    if split and (bounds is not None or std is not None):
        raise _Inval("A --specs-xxx option cannot be specified together with"
                     " --ipolicy-bounds-specs or --ipolicy-std-specs")

    if split:
        minmax: dict[str, dict[str, int]] = {constants.ISPECS_MIN: {},
                                              constants.ISPECS_MAX: {}}
        std_specs: dict[str, int] = {}
        for spec, (option, text) in split.items():
            for key, value in _SplitPairs(text, option):
                if key not in _SPLIT_KEYS:
                    raise _Inval(f"Invalid key '{key}' in {option} (valid:"
                                 f" {', '.join(_SPLIT_KEYS)})")
                parsed = ParseSpecValue(spec, value, option)
                if key == constants.ISPECS_STD:
                    std_specs[spec] = parsed
                else:
                    minmax[key][spec] = parsed
        if fill_all:
            for key in (constants.ISPECS_MIN, constants.ISPECS_MAX):
                minmax[key] = FillDict(constants.ISPECS_MINMAX_DEFAULTS[key],
                                             minmax[key])
        if minmax[constants.ISPECS_MIN] or minmax[constants.ISPECS_MAX]:
            ipolicy[constants.ISPECS_MINMAX] = [minmax]
        if std_specs:
            ipolicy[constants.ISPECS_STD] = std_specs
    if bounds is not None:
        if _Default("--ipolicy-bounds-specs", bounds):
            ipolicy[constants.ISPECS_MINMAX] = constants.VALUE_DEFAULT
        else:
            ipolicy[constants.ISPECS_MINMAX] = ParseBoundsSpecs(bounds)
    if std is not None:
        if _Default("--ipolicy-std-specs", std):
            ipolicy[constants.ISPECS_STD] = constants.VALUE_DEFAULT
        else:
            ipolicy[constants.ISPECS_STD] = ParseSpecs(std, "--ipolicy-std-specs")
    if fill_all:
        std_default = constants.IPOLICY_DEFAULTS[constants.ISPECS_STD]
        assert isinstance(std_default, dict)
        ipolicy[constants.ISPECS_STD] = FillDict(
            std_default, ipolicy.get(constants.ISPECS_STD) or {})

    dts = _Get("ipolicy_disk_templates")
    if dts is not None:
        if _Default("--ipolicy-disk-templates", dts):
            ipolicy[constants.IPOLICY_DTS] = constants.VALUE_DEFAULT
        else:
            names = [name.strip() for name in str(dts).split(",") if name.strip()]
            bad = [name for name in names if name not in constants.DISK_TEMPLATES]
            if bad:
                raise _Inval(f"Unknown disk template(s) in --ipolicy-disk-templates:"
                             f" {', '.join(bad)} (known:"
                             f" {', '.join(sorted(constants.DISK_TEMPLATES))})")
            ipolicy[constants.IPOLICY_DTS] = list(dict.fromkeys(names))
    for option, dest, key in (
            ("--ipolicy-vcpu-ratio", "ipolicy_vcpu_ratio", constants.IPOLICY_VCPU_RATIO),
            ("--ipolicy-spindle-ratio", "ipolicy_spindle_ratio",
             constants.IPOLICY_SPINDLE_RATIO)):
        text = _Get(dest)
        if text is None:
            continue
        if _Default(option, text):
            ipolicy[key] = constants.VALUE_DEFAULT
        else:
            ipolicy[key] = ParseRatio(str(text), option)
    return ipolicy
