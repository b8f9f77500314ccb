"""The opcode base class and the parameters shared by many opcodes.

An opcode is a request for one operation ("start this instance"). Each
opcode class declares its parameters once, in ``OP_PARAMS``, as tuples of
``(name, default, check, doc)``:

- ``name``: the attribute and dict key, as in Ganeti;
- ``default``: :data:`ht.NoDefault` for a required parameter, a callable
  (called for each opcode, e.g. :func:`ht.EmptyList`) or a value (deep-copied
  for each opcode, so mutable defaults are never shared);
- ``check``: an :mod:`ganeti.ht` check, or :data:`ht.NoType`;
- ``doc``: one line for humans (CLI help, RAPI docs).

The declarations drive validation (:meth:`OpCode.Validate`), serialisation
(:meth:`OpCode.ToDict`, :meth:`OpCode.LoadOpCode`) and documentation.
The concrete opcodes live in :mod:`ganeti.opcodes`, which re-exports
everything defined here.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any, ClassVar

from ganeti import constants, errors, ht

#: One parameter declaration: (name, default, check, doc)
ParamDef = tuple[str, Any, Any, str]

#: Parameters holding private or secret values: never shown in messages,
#: and redacted by ``ToDict(_with_private=False)``
PRIVATE_PARAMS = frozenset(["osparams_private", "osparams_secret",
                            "osparams_private_cluster"])
REDACTED = "<redacted>"

# "OpInstanceCreate" -> "Op_Instance_Create" -> "OP_INSTANCE_CREATE"
_OPID_BOUNDARY_RE = re.compile(r"([a-z])([A-Z])")

# Prefixes shortened by TinySummary
_TINY_PREFIXES = (("CLUSTER_", "C_"), ("GROUP_", "G_"), ("NODE_", "N_"),
                  ("INSTANCE_", "I_"))


def NameToId(name: str) -> str:
    """Compute an opcode ID from a class name ("OpNodeAdd" -> "OP_NODE_ADD")."""
    if not name.startswith("Op"):
        raise ValueError(f"Opcode class names start with 'Op', not {name!r}")
    return _OPID_BOUNDARY_RE.sub(r"\1_\2", name).upper()


def _ShowValue(name: str, value: Any) -> str:
    """Render a parameter value for an error message."""
    if name in PRIVATE_PARAMS:
        return REDACTED
    # Long strings are cut: a 10,000-character name does not come back whole
    return ht.ShortRepr(value)


def _Serialise(value: Any) -> Any:
    """Turn nested opcodes (e.g. in OpInstanceMultiAlloc) into dicts."""
    if isinstance(value, OpCode):
        return value.ToDict()
    if isinstance(value, list):
        return [_Serialise(v) for v in value]
    return value


def _Normalise(value: Any) -> Any:
    """Make values compare as they would after a JSON round trip."""
    if isinstance(value, (list, tuple)):
        return [_Normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: _Normalise(v) for k, v in value.items()}
    return value


class _OpCodeMeta(type):
    """Metaclass deriving OP_ID, __slots__ and the full parameter list.

    Every opcode class gets slots for the parameters it declares itself, so
    an unset parameter is simply absent (``hasattr`` is False) and a typo in
    an attribute name fails loudly.
    """

    def __new__(mcs, name: str, bases: tuple[type, ...],
                namespace: dict[str, Any]) -> _OpCodeMeta:
        if "OP_ID" in namespace:
            raise TypeError(f"Opcode class {name} must not set OP_ID; "
                            "it is derived from the class name")
        own_params = list(namespace.get("OP_PARAMS", []))
        inherited: list[ParamDef] = []
        for base in bases:
            inherited.extend(getattr(base, "_all_params", ()))
        seen = {param[0] for param in inherited}
        for param in own_params:
            mcs._CheckParam(name, param, bases, namespace, seen)
            seen.add(param[0])
        namespace["__slots__"] = tuple(param[0] for param in own_params)
        namespace["OP_ID"] = NameToId(name)
        cls = super().__new__(mcs, name, bases, namespace)
        all_params = tuple(inherited + [tuple(p) for p in own_params])
        cls._all_params = all_params  # type: ignore[attr-defined]
        cls._param_names = frozenset(  # type: ignore[attr-defined]
            p[0] for p in all_params)
        dsc = namespace.get("OP_DSC_FIELD")
        if dsc is not None and dsc not in cls._param_names:  # type: ignore
            raise TypeError(f"{name}.OP_DSC_FIELD names unknown parameter "
                            f"{dsc!r}")
        return cls

    @staticmethod
    def _CheckParam(clsname: str, param: Any, bases: tuple[type, ...],
                    namespace: dict[str, Any], seen: set[str]) -> None:
        """Reject malformed, duplicate or attribute-shadowing parameters."""
        if not (isinstance(param, tuple) and len(param) == 4):
            raise TypeError(f"{clsname}: parameters are (name, default, "
                            f"check, doc) tuples, not {param!r}")
        pname, _, check, doc = param
        if not (isinstance(pname, str) and pname.isidentifier()
                and not pname.startswith("_")):
            raise TypeError(f"{clsname}: invalid parameter name {pname!r}")
        if pname in seen:
            raise TypeError(f"{clsname}: parameter {pname!r} declared twice")
        if pname in namespace or any(hasattr(base, pname) for base in bases):
            raise TypeError(f"{clsname}: parameter {pname!r} would hide an "
                            "attribute of the class")
        if not (check is ht.NoType or callable(check)):
            raise TypeError(f"{clsname}: check of {pname!r} is not callable")
        if not isinstance(doc, str):
            raise TypeError(f"{clsname}: doc of {pname!r} is not a string")


# --- Checks shared by the base parameters ---------------------------------------

def BuildJobDepCheck(relative: bool) -> ht.Check:
    """Check for job dependencies: [[job_id, [final_status, ...]], ...].

    With ``relative``, job IDs may be negative (relative to the job being
    submitted, for jobs submitted together).
    """
    job_id = ht.TOr(ht.TJobId, ht.TRelativeJobId) if relative else ht.TJobId
    dep = ht.TAnd(ht.TIsLength(2), ht.TItems([
        job_id, ht.TListOf(ht.TElemOf(constants.JOBS_FINALIZED))]))
    return ht.TMaybe(ht.TListOf(dep))


TJobDependencies = BuildJobDepCheck(True)

#: Reason trail entry: [source, reason, timestamp in nanoseconds]
TReasonEntry = ht.TAnd(ht.TIsLength(3), ht.TItems([
    ht.Comment("source")(ht.TText(ht.MAX_NAME_LEN)),
    ht.Comment("reason")(ht.TText(ht.MAX_TEXT_LEN)),
    ht.Comment("timestamp")(ht.TInt),
]))

#: Priorities a client may use when submitting a job
#: (an integer: 0.0 equals 0 but is no priority the worker pool takes)
TSubmitPriority = ht.TAnd(ht.TInt, ht.TElemOf(constants.OP_PRIO_SUBMIT_VALID))


class OpCode(metaclass=_OpCodeMeta):
    """Base of every opcode.

    Class attributes set by subclasses:

    - ``OP_PARAMS``: the parameters the class adds (see the module doc);
    - ``OP_DSC_FIELD``: the parameter shown by :meth:`Summary`, or None;
    - ``OP_DSC_FORMATTER``: optional callable formatting that value;
    - ``OP_RESULT``: an :mod:`ganeti.ht` check for the result, or None;
    - ``WITH_LU``: whether a logical unit executes the opcode.

    ``OP_ID`` is derived from the class name and cannot be set.
    """

    OP_ID: ClassVar[str]
    OP_DSC_FIELD: ClassVar[str | None] = None
    # Callables (or None); typed Any so that they are not taken for methods
    OP_DSC_FORMATTER: ClassVar[Any] = None
    OP_RESULT: ClassVar[Any] = None
    WITH_LU: ClassVar[bool] = True
    _all_params: ClassVar[tuple[ParamDef, ...]]
    _param_names: ClassVar[frozenset[str]]

    OP_PARAMS: ClassVar[list[ParamDef]] = [
        (constants.OP_DRY_RUN, None, ht.TMaybeBool,
         "Only check the request; change nothing"),
        (constants.OP_DEBUG_LEVEL, None, ht.TMaybe(ht.TNonNegativeInt),
         "How much debugging output to produce"),
        (constants.OP_PRIORITY, constants.OP_PRIO_DEFAULT,
         ht.TAnd(ht.TInt, ht.TElemOf(constants.OP_PRIO_ALL)),
         "Priority (lower runs first); clients submit only "
         "OP_PRIO_SUBMIT_VALID values"),
        (constants.OP_DEPENDS, None, TJobDependencies,
         "Jobs that must finish first, with the final statuses accepted; "
         "job IDs may be relative (negative) when jobs are submitted together"),
        (constants.OP_COMMENT, None, ht.TMaybe(ht.TText(ht.MAX_TEXT_LEN)),
         "Free-form note on why the opcode was submitted"),
        (constants.OP_REASON, ht.EmptyList, ht.TListOf(TReasonEntry),
         "Reason trail: who asked for this and why, oldest first"),
    ]

    if TYPE_CHECKING:
        # Parameters are slots made by the metaclass; let type checkers
        # accept them on any opcode.
        def __getattr__(self, name: str) -> Any: ...

    def __init__(self, **kwargs: Any) -> None:
        """Set the given parameters; an undeclared one is a TypeError."""
        for name, value in kwargs.items():
            if name not in self._param_names:
                raise TypeError(f"Object {self.__class__.__name__} doesn't "
                                f"support the parameter '{name}'")
            setattr(self, name, value)
        self._PostLoad()

    def _PostLoad(self) -> None:
        """Hook run after parameters are set (nested opcodes and such)."""

    # --- Declarations --------------------------------------------------------

    @classmethod
    def GetAllParams(cls) -> list[ParamDef]:
        """All parameters, the base class's first: (name, default, check, doc)."""
        return list(cls._all_params)

    @classmethod
    def GetAllSlots(cls) -> list[str]:
        """Names of all parameters (the attributes an opcode may have)."""
        return [param[0] for param in cls._all_params]

    # --- Validation ------------------------------------------------------------

    def Validate(self, set_defaults: bool) -> None:
        """Check every parameter; with ``set_defaults``, fill in defaults.

        Raises OpPrereqError (ECODE_INVAL) for a missing required parameter
        or a value its check refuses; the message names the opcode, the
        parameter, what was expected and what was given.
        """
        for name, default, check, _ in self._all_params:
            if not hasattr(self, name):
                if default is ht.NoDefault:
                    raise errors.OpPrereqError(
                        f"Required parameter '{self.OP_ID}.{name}' missing",
                        errors.ECODE_INVAL)
                if not set_defaults:
                    continue
                setattr(self, name, self._DefaultValue(default))
            if check is ht.NoType:
                continue
            value = getattr(self, name)
            if not check(value):
                raise errors.OpPrereqError(
                    f"Parameter '{self.OP_ID}.{name}' fails validation: "
                    f"expected {ht.TypeDescription(check)}, "
                    f"got {_ShowValue(name, value)}", errors.ECODE_INVAL)

    @staticmethod
    def _DefaultValue(default: Any) -> Any:
        """A fresh default value (never shared between opcodes)."""
        if callable(default):
            return default()
        return copy.deepcopy(default)

    def ValidateSubmitPriority(self) -> None:
        """Refuse priorities a client may not submit (OP_PRIO_SUBMIT_VALID)."""
        prio = getattr(self, constants.OP_PRIORITY, constants.OP_PRIO_DEFAULT)
        if not TSubmitPriority(prio):
            raise errors.OpPrereqError(
                f"Parameter '{self.OP_ID}.priority' fails validation: "
                f"expected {TSubmitPriority}, got {prio!r}",
                errors.ECODE_INVAL)

    # --- Serialisation -----------------------------------------------------------

    def ToDict(self, _with_private: bool = True) -> dict[str, Any]:
        """Return a plain dict: "OP_ID" plus every parameter that is set.

        With ``_with_private=False`` the values of private and secret
        parameters (PRIVATE_PARAMS) are replaced by "<redacted>", for
        output shown to users.
        """
        data: dict[str, Any] = {"OP_ID": self.OP_ID}
        for name in self.GetAllSlots():
            if not hasattr(self, name):
                continue
            value = _Serialise(getattr(self, name))
            if not _with_private and name in PRIVATE_PARAMS \
                    and isinstance(value, dict):
                value = {key: REDACTED for key in value}
            data[name] = value
        return data

    def __getstate__(self) -> dict[str, Any]:
        return self.ToDict()

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise ValueError(f"Invalid data to __setstate__: expected dict, "
                             f"got {type(state).__name__}")
        params = dict(state)
        op_id = params.pop("OP_ID", self.OP_ID)
        if op_id != self.OP_ID:
            raise errors.OpPrereqError(
                f"Data for {self.OP_ID} carries OP_ID {op_id!r}",
                errors.ECODE_INVAL)
        unknown = sorted(str(key) for key in params
                         if key not in self._param_names)
        if unknown:
            raise errors.OpPrereqError(
                f"Opcode {self.OP_ID} has no parameter(s) "
                + ", ".join(f"'{key}'" for key in unknown), errors.ECODE_INVAL)
        for name, value in params.items():
            setattr(self, name, value)
        self._PostLoad()

    @classmethod
    def LoadOpCode(cls, data: Any) -> OpCode:
        """Build an opcode from a dict made by :meth:`ToDict`.

        The class comes from ``data["OP_ID"]``. A missing or unknown OP_ID,
        or a key that is not a parameter of that opcode, raises
        OpPrereqError (ECODE_INVAL) naming the offending key(s). Values are
        not checked here: call :meth:`Validate`.
        """
        if not isinstance(data, dict):
            raise errors.OpPrereqError(
                "Invalid data to LoadOpCode: expected a dict, got "
                f"{type(data).__name__}", errors.ECODE_INVAL)
        if "OP_ID" not in data:
            raise errors.OpPrereqError(
                "Invalid data to LoadOpCode, missing OP_ID",
                errors.ECODE_INVAL)
        from ganeti.opcodes import OP_MAPPING  # the registry imports us
        op_id = data["OP_ID"]
        op_class = OP_MAPPING.get(op_id) if isinstance(op_id, str) else None
        if op_class is None:
            raise errors.OpPrereqError(f"Invalid opcode {op_id!r}",
                                       errors.ECODE_INVAL)
        if not issubclass(op_class, cls):
            raise errors.OpPrereqError(
                f"Opcode {op_id} is not a {cls.__name__}", errors.ECODE_INVAL)
        op = op_class.__new__(op_class)
        op.__setstate__(data)
        return op

    # --- Presentation and comparison -------------------------------------------------

    def Summary(self) -> str:
        """Short text like "INSTANCE_STARTUP(inst1.example.com)"."""
        text = self.OP_ID[len("OP_"):]
        field = self.OP_DSC_FIELD
        if field is None:
            return text
        value = getattr(self, field, None)
        formatter = self.OP_DSC_FORMATTER
        if formatter is not None:
            value = formatter(value)
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(item) for item in value)
        return f"{text}({value})"

    def TinySummary(self) -> str:
        """Shorter summary: "I_STARTUP" for OP_INSTANCE_STARTUP and such."""
        text = self.OP_ID[len("OP_"):]
        for prefix, short in _TINY_PREFIXES:
            if text.startswith(prefix):
                return short + text[len(prefix):]
        return text

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={_ShowValue(name, getattr(self, name))}"
                         for name in self.GetAllSlots() if hasattr(self, name))
        return f"{self.__class__.__name__}({args})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OpCode):
            return NotImplemented
        return _Normalise(self.ToDict()) == _Normalise(other.ToDict())

    __hash__ = None  # type: ignore[assignment]  # opcodes are mutable


# --- Parameters shared by several opcodes ---------------------------------------------
#
# Names follow Ganeti's parameter names; a P prefix marks a declaration.

NES = ht.TNonEmptyString

# Names: nodes, instances and the cluster are host names; groups, networks,
# OSes and UUIDs have a file name's limits (see ganeti.ht)
THostname = ht.THostname
TMaybeHostname = ht.TMaybe(ht.THostname)
THostnameList = ht.TListOf(ht.THostname)
TObjectName = ht.TObjectName
TMaybeObjectName = ht.TMaybe(ht.TObjectName)
TObjectNameList = ht.TListOf(ht.TObjectName)
#: UUIDs filled in by the master (clients may give them too)
TMaybeUuid = TMaybeObjectName
#: Short single-line strings: field names, error codes, storage unit names
TShortString = ht.TShortString(ht.MAX_NAME_LEN)

#: Disk index: 0 to MAX_DISKS - 1
TDiskIndex = ht.WithDesc(f"disk index (0 to {constants.MAX_DISKS - 1})")(
    lambda v: ht.TNonNegativeInt(v) and v < constants.MAX_DISKS)
TDiskTemplate = ht.TElemOf(constants.DISK_TEMPLATES)
THypervisor = ht.TElemOf(constants.HYPER_TYPES)
TStorageType = ht.TElemOf(constants.STORAGE_TYPES)
#: [[start, end], ...] UID ranges, both ends included
TUidRanges = ht.TListOf(ht.TAnd(ht.TIsLength(2), ht.TItems([ht.TInt,
                                                             ht.TInt])))
#: [[action, os_name], ...] with action "add" or "remove"
TOsListMods = ht.TListOf(ht.TAnd(ht.TIsLength(2), ht.TItems([
    ht.TElemOf(constants.DDMS_SIMPLE), ht.TObjectName])))
TDiskTemplateParams = ht.TDictOf(TDiskTemplate, ht.TDict)
TIPv4OrNone = ht.TOr(ht.TIPv4Address, ht.TValueNone)
TExportMode = ht.TElemOf(constants.EXPORT_MODES)


def TPair(first: Any, second: Any) -> ht.Check:
    """Two-item list or tuple, items checked by ``first`` and ``second``."""
    return ht.TAnd(ht.TIsLength(2), ht.TItems([first, second]))


#: Disks to recreate: [] for all, [index, ...], or [[index, params], ...]
TRecreateDisksInfo = ht.WithDesc(
    "list of disk indices or of [disk index, disk parameters]")(
    ht.TOr(ht.TListOf(TDiskIndex), ht.TListOf(TPair(TDiskIndex,
                                                     ht.TDiskParams))))

# Result checks shared by several opcodes
TNoneOrJobs = ht.TOr(ht.TNone, ht.TJobIdListOnly)
#: Changes applied by a *SetParams opcode: [[parameter, new value], ...]
TSetParamsResult = ht.TListOf(TPair(NES, ht.TAny))
TResultStatus = ht.TElemOf([constants.RS_NORMAL, constants.RS_UNKNOWN,
                            constants.RS_NODATA, constants.RS_UNAVAIL,
                            constants.RS_OFFLINE])
#: One row of a query result: [[status, value], ...] per field
TQueryRow = ht.TListOf(TPair(TResultStatus, ht.TAny))
TQueryResponse = ht.TStrictDict(True, False, {
    "fields": ht.TListOf(ht.TDict),
    "data": ht.TListOf(TQueryRow),
})
TQueryFieldsResponse = ht.TStrictDict(True, False, {
    "fields": ht.TListOf(ht.TDict),
})
TGroupVerifyDisksResult = ht.TAnd(ht.TIsLength(3), ht.TItems([
    ht.Comment("nodes with errors")(ht.TDictOf(ht.TString, ht.TString)),
    ht.Comment("instances with inactive disks")(ht.TListOf(ht.TString)),
    ht.Comment("missing volumes per instance")(
        ht.TDictOf(ht.TString, ht.TListOf(ht.TListOf(ht.TString)))),
]))
TRepairDiskSizesResult = ht.TListOf(ht.TAnd(ht.TIsLength(4), ht.TItems([
    NES, ht.TNonNegativeInt, NES, ht.TNonNegativeInt])))

# Identity of the object operated on
PInstanceName = ("instance_name", ht.NoDefault, THostname,
                 "Name of the instance")
PInstanceUuid = ("instance_uuid", None, TMaybeUuid,
                 "UUID of the instance (filled in by the master)")
PNodeName = ("node_name", ht.NoDefault, THostname, "Name of the node")
PNodeUuid = ("node_uuid", None, TMaybeUuid,
             "UUID of the node (filled in by the master)")
PGroupName = ("group_name", ht.NoDefault, TObjectName, "Name of the node group")
POptGroupName = ("group_name", None, TMaybeObjectName,
                 "Name of a node group, if any")
PNetworkName = ("network_name", ht.NoDefault, TObjectName,
                "Name of the network")
PNewName = ("new_name", ht.NoDefault, TObjectName, "The new name")
PNewHostname = ("new_name", ht.NoDefault, THostname, "The new name")
PInstances = ("instances", ht.EmptyList, THostnameList,
              "Instance names (empty for all)")
PNodes = ("nodes", ht.EmptyList, THostnameList, "Node names (empty for all)")
PRequiredNodes = ("nodes", ht.NoDefault, THostnameList,
                  "Node names (at least one)")
PNodeUuids = ("node_uuids", None, ht.TMaybe(TObjectNameList),
              "Node UUIDs (filled in by the master)")
PNames = ("names", ht.EmptyList, TObjectNameList,
          "Names to look at (empty for all)")

# Flags
PForce = ("force", False, ht.TBool, "Go ahead despite warnings")
PUseLocking = ("use_locking", False, ht.TBool,
               "Take locks, for consistent data at the cost of waiting")
PVerbose = ("verbose", False, ht.TBool, "Report more detail")
PDebug = ("debug", False, ht.TBool, "Report debugging detail")
PEarlyRelease = ("early_release", False, ht.TBool,
                 "Release locks as soon as they are not needed")
PIgnoreIpolicy = ("ignore_ipolicy", False, ht.TBool,
                  "Go ahead even if the instance policy is violated")
PIgnoreOfflineNodes = ("ignore_offline_nodes", False, ht.TBool,
                       "Skip offline nodes instead of failing")
PIgnoreConsistency = ("ignore_consistency", False, ht.TBool,
                      "Go ahead even if disks are degraded")
PForceVariant = ("force_variant", False, ht.TBool,
                 "Accept an OS variant the OS does not list")
PWaitForSync = ("wait_for_sync", True, ht.TBool,
                "Wait until the disks are in sync")
PWaitForSyncFalse = ("wait_for_sync", False, ht.TBool,
                     "Wait until the disks are in sync")
PNameCheck = ("name_check", False, ht.TBool,
              "Resolve the name and check that it matches")
PIpCheck = ("ip_check", False, ht.TBool,
            "Check that the resolved IP address is not in use yet")
PIpConflictsCheck = ("conflicts_check", True, ht.TBool,
                     "Check for IP addresses used twice")
PNoRemember = ("no_remember", False, ht.TBool,
               "Do not record the new state in the configuration")
PAllowRuntimeChanges = ("allow_runtime_changes", True, ht.TBool,
                        "Allow changing runtime parameters (e.g. memory) "
                        "during migration")
PMigrationCleanup = ("cleanup", False, ht.TBool,
                     "Clean up after a failed migration instead of migrating")
POpportunisticLocking = ("opportunistic_locking", False, ht.TBool,
                         "Only consider nodes whose locks are free right "
                         "now (with an iallocator)")
PIsStrict = ("is_strict", True, ht.TBool,
             "Fail on the first problem instead of continuing")
PVerifyClutter = ("verify_clutter", False, ht.TBool,
                  "Also look for unexpected keys in authorized_keys")
PHotplug = ("hotplug", False, ht.TBool,
            "Add or remove devices while the instance runs (an error when the"
            " hypervisor cannot)")
PHotplugIfPossible = ("hotplug_if_possible", False, ht.TBool,
                      "Add or remove devices while the instance runs if the"
                      " hypervisor can; otherwise they change at the next restart")
PStatic = ("static", False, ht.TBool,
           "Only return configuration data; do not ask the nodes")

# Cluster verification
PDebugSimulateErrors = ("debug_simulate_errors", False, ht.TBool,
                        "Pretend errors were found (for testing)")
PErrorCodes = ("error_codes", False, ht.TBool,
               "Report errors in a machine-parseable form")
PSkipChecks = ("skip_checks", ht.EmptyList,
               ht.TListOf(ht.TElemOf(constants.VERIFY_OPTIONAL_CHECKS)),
               "Optional checks to skip")
# The list of verify error codes is defined with cluster verification, so
# only the shape is checked here
PIgnoreErrors = ("ignore_errors", ht.EmptyList, ht.TListOf(TShortString),
                 "Error codes to report as warnings")

# Timeouts
PShutdownTimeout = ("shutdown_timeout", constants.DEFAULT_SHUTDOWN_TIMEOUT,
                    ht.TNonNegativeInt,
                    "Seconds to wait for the instance to shut down")
PShutdownTimeoutAlt = ("timeout", constants.DEFAULT_SHUTDOWN_TIMEOUT,
                       ht.TNonNegativeInt,
                       "Seconds to wait for the instance to shut down")

# Query-like opcodes
POutputFields = ("output_fields", ht.NoDefault, ht.TListOf(TShortString),
                 "Fields to return")
PQueryWhat = ("what", ht.NoDefault, ht.TElemOf(constants.QR_VIA_OP),
              "Kind of resource to query")

# State and parameters
PHvState = ("hv_state", None, ht.TMaybeDict, "Hypervisor state to set")
PDiskState = ("disk_state", None, ht.TMaybeDict, "Disk state to set")
PNdParams = ("ndparams", None, ht.TMaybeDict, "Node parameters")
PIpolicy = ("ipolicy", None, ht.TMaybeDict, "Instance policy")
PDiskParams = ("diskparams", None, ht.TMaybe(TDiskTemplateParams),
               "Disk parameters per disk template")
PAllocPolicy = ("alloc_policy", None,
                ht.TMaybe(ht.TElemOf(constants.VALID_ALLOC_POLICIES)),
                "How the group is used for new instances")
PInstBeParams = ("beparams", ht.EmptyDict, ht.TDict,
                 "Backend parameters of the instance")
PInstHvParams = ("hvparams", ht.EmptyDict, ht.TDict,
                 "Hypervisor parameters of the instance")
PInstOsParams = ("osparams", ht.EmptyDict, ht.TDict,
                 "OS parameters of the instance")
PInstOsParamsPrivate = ("osparams_private", None, ht.TMaybeDict,
                        "Private OS parameters (never shown)")
PInstOsParamsSecret = ("osparams_secret", None, ht.TMaybeDict,
                       "Secret OS parameters (never stored)")
POsType = ("os_type", None, TMaybeObjectName, "OS to install")
PMasterCapable = ("master_capable", None, ht.TMaybeBool,
                  "Whether the node may become master (candidate)")
PVmCapable = ("vm_capable", None, ht.TMaybeBool,
              "Whether the node may run instances")
PSecondaryIp = ("secondary_ip", None, ht.TMaybe(ht.TIPAddress),
                "Secondary (replication) IP address of the node")
POffline = ("offline", None, ht.TMaybeBool, "Mark as offline or online")
#: Tags of a new object; the LUs apply the characters rule of
#: objects.TaggableObject.ValidateTag (OpTagsSet's tags are left to it)
TNewTags = ht.TListOf(ht.TShortString(constants.MAX_TAG_LEN))
PInstTags = ("tags", ht.EmptyList, TNewTags, "Tags to set")

# Placement
PIallocator = ("iallocator", None, ht.TMaybe(ht.TIallocatorName),
               "Allocator script choosing the nodes")
PRemoteNode = ("remote_node", None, TMaybeHostname, "New secondary node")
PRemoteNodeUuid = ("remote_node_uuid", None, TMaybeUuid,
                   "UUID of the new secondary node")
PPrimaryNode = ("pnode", None, TMaybeHostname, "Primary node")
PPrimaryNodeUuid = ("pnode_uuid", None, TMaybeUuid, "UUID of the primary node")
PMigrationMode = ("mode", None,
                  ht.TMaybe(ht.TElemOf(constants.HT_MIGRATION_MODES)),
                  "Migration mode (live or non-live)")
PMigrationLive = ("live", None, ht.TMaybeBool,
                  "Obsolete: use mode instead (true means live)")
PMigrationTargetNode = ("target_node", None, TMaybeHostname,
                        "Target node (shared storage only)")
PMigrationTargetNodeUuid = ("target_node_uuid", None, TMaybeUuid,
                            "UUID of the target node")
PTargetGroups = ("target_groups", None, ht.TMaybe(TObjectNameList),
                 "Groups to move to (names or UUIDs; default: all others)")
PDiskTemplate = ("disk_template", None, ht.TMaybe(TDiskTemplate),
                 "Disk template")
PHypervisor = ("hypervisor", None, ht.TMaybe(THypervisor), "Hypervisor")
PFileDriver = ("file_driver", None,
               ht.TMaybe(ht.TElemOf(constants.FILE_DRIVER)),
               "Driver for file-based disks")
PFileStorageDir = ("file_storage_dir", None, ht.TMaybe(ht.TRelativePath),
                   "Subdirectory of the cluster's storage directory for the"
                   " instance's file-based disks")
PCompress = ("compress", constants.IEC_NONE, ht.TProgramName,
             "Compression tool for data sent between nodes")

# Storage units
PStorageType = ("storage_type", ht.NoDefault, TStorageType, "Storage type")
PStorageName = ("name", None, ht.TMaybe(ht.TShortString(ht.MAX_PATH_LEN)),
                "Name of the storage unit (a volume group, a path, ...)")

# Tags
PTagKind = ("kind", ht.NoDefault, ht.TElemOf(constants.VALID_TAG_TYPES),
            "Kind of object the tags belong to")
PTagsName = ("name", None, ht.TMaybe(ht.TOr(ht.TEmptyString, TObjectName)),
             "Name of the object (none for the cluster)")
PTagsList = ("tags", ht.NoDefault, ht.TListOf(ht.TString), "Tags")

# Networks
PNetworkGateway4 = ("gateway", None, ht.TMaybe(TIPv4OrNone),
                    "IPv4 gateway (\"none\" to remove it)")
PNetworkAddress6 = ("network6", None,
                    ht.TMaybe(ht.TOr(ht.TIPv6Network, ht.TValueNone)),
                    "IPv6 network (\"none\" to remove it)")
PNetworkGateway6 = ("gateway6", None,
                    ht.TMaybe(ht.TOr(ht.TIPv6Address, ht.TValueNone)),
                    "IPv6 gateway (\"none\" to remove it)")
PNetworkMacPrefix = ("mac_prefix", None,
                     ht.TMaybe(ht.TOr(ht.TMacPrefix, ht.TValueNone)),
                     "MAC prefix for the network, replacing the cluster's")
PNetworkAddRsvdIps = ("add_reserved_ips", None,
                      ht.TMaybeListOf(ht.TIPv4Address),
                      "IP addresses to reserve for outside use")
