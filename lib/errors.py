"""Ganeti's exception hierarchy.

Errors that cross a wire (luxi, node RPC, job results) are encoded with
:func:`EncodeException` as ``[class_name, [args...]]`` and raised again on the
other side with :func:`MaybeRaise`. Only classes defined here can be
re-raised; anything else comes back as :class:`GenericError`.
"""

from __future__ import annotations

from typing import Any, NoReturn

from ganeti import constants

# Error codes re-exported so callers write errors.ECODE_INVAL, as in Ganeti
ECODE_RESOLVER = constants.ECODE_RESOLVER
ECODE_NORES = constants.ECODE_NORES
ECODE_TEMP_NORES = constants.ECODE_TEMP_NORES
ECODE_INVAL = constants.ECODE_INVAL
ECODE_STATE = constants.ECODE_STATE
ECODE_NOENT = constants.ECODE_NOENT
ECODE_EXISTS = constants.ECODE_EXISTS
ECODE_NOTUNIQUE = constants.ECODE_NOTUNIQUE
ECODE_FAULT = constants.ECODE_FAULT
ECODE_ENVIRON = constants.ECODE_ENVIRON
ECODE_ALL = constants.ECODE_ALL


class GenericError(Exception):
    """Base class for every error of the system."""


class LVMError(GenericError):
    """An LVM command or its output was not what we expected."""


class LockError(GenericError):
    """A lock could not be acquired, released or removed as asked."""


class PidFileLockError(LockError):
    """Another process holds the pid file of a daemon."""


class HypervisorError(GenericError):
    """The hypervisor refused or failed an operation."""


class HotplugError(HypervisorError):
    """Hot-plugging a device failed."""


class ProgrammerError(GenericError):
    """A bug: the code was used in a way it does not allow."""


class BlockDeviceError(GenericError):
    """A block device could not be created, assembled or queried."""


class StorageError(GenericError):
    """A storage unit operation failed."""


class ConfigurationError(GenericError):
    """The configuration is missing, corrupt or inconsistent."""


class ConfigVersionMismatch(ConfigurationError):
    """The configuration file was written by another version."""


class ConfigVerifyError(ConfigurationError):
    """The configuration failed its consistency check.

    The second argument is the list of problems found.
    """


class AddressPoolError(GenericError):
    """A network's address pool has no room or the address is not in it."""


class ReservationError(GenericError):
    """A resource (MAC, IP, minor, port, LV name) is already reserved."""


class RemoteError(GenericError):
    """A remote call failed in a way the caller did not expect."""


class SignatureError(GenericError):
    """A signed message did not verify."""


class ParameterError(GenericError):
    """A parameter was missing or had a bad value."""


class ResultValidationError(GenericError):
    """An opcode's result did not pass its declared check."""


class OpPrereqError(GenericError):
    """A prerequisite of an opcode does not hold.

    Arguments: a message and one of the ECODE_* error codes.
    """


class OpExecError(GenericError):
    """An opcode failed while it ran."""


class OpResultError(GenericError):
    """An opcode returned a result of the wrong type."""


class OpRetryNotSupportedError(GenericError):
    """The opcode cannot be retried."""


class DeviceCreationError(GenericError):
    """Creating disks failed; the argument list holds the devices made."""

    def __init__(self, message: str, created_devices: list | None = None):
        super().__init__(message)
        self.created_devices = created_devices or []


class OpCodeUnknown(GenericError):
    """The opcode ID is not known."""


class JobLost(GenericError):
    """A submitted job is not in the queue any more."""


class JobCanceled(GenericError):
    """The job was cancelled while it ran."""


class JobFileCorrupted(GenericError):
    """A job file could not be parsed."""


class ResolverError(GenericError):
    """A host name could not be resolved.

    Arguments: the name, the resolver's error number, its message.
    """


class HooksFailure(GenericError):
    """Hooks could not be run at all (not a hook's own failure)."""


class HooksAbort(HooksFailure):
    """A pre-hook failed, so the operation is aborted.

    The argument is a list of (node, script, output) tuples.
    """


class UnitParseError(GenericError):
    """A size with a unit could not be parsed."""


class ParseError(GenericError):
    """Data from a tool or file could not be parsed."""


class TypeEnforcementError(GenericError):
    """A value could not be converted to the type a parameter needs."""


class X509CertError(GenericError):
    """An X.509 certificate is invalid or expired.

    Arguments: the file name, a message.
    """


class TagError(GenericError):
    """A tag is invalid, too long, or there are too many."""


class CommandError(GenericError):
    """A CLI command was used wrongly."""


class InotifyError(GenericError):
    """Watching a file for changes failed."""


class QuitGanetiException(Exception):
    """Signal that the daemon should quit, with an answer for the client.

    Arguments: whether to shut down (bool), the payload to answer.
    Deliberately not a GenericError: nothing catches it by accident.
    """


class JobQueueError(GenericError):
    """The job queue is in a state that prevents the operation."""


class JobQueueDrainError(JobQueueError):
    """The job queue is drained: new jobs are refused."""


class JobQueueFull(JobQueueError):
    """The job queue holds as many jobs as it may."""


class ConfdMagicError(GenericError):
    """A confd datagram did not start with the expected magic."""


class ConfdClientError(GenericError):
    """The confd client was used or configured wrongly."""


class UdpDataSizeError(GenericError):
    """A datagram is larger than UDP allows."""


class NoCtypesError(GenericError):
    """A feature needs ctypes, which is unavailable."""


class IPAddressError(GenericError):
    """An IP address is invalid."""


class LuxiError(GenericError):
    """A luxi call failed at the protocol level."""


class QueryFilterParseError(ParseError):
    """A query filter is invalid.

    Arguments: a message and the details of where parsing failed.
    """


class RapiTestResult(GenericError):
    """Carries a result out of the RAPI test harness."""


class FileStoragePathError(GenericError):
    """A file storage path is outside the allowed directories."""


# Classes that may be re-raised from the wire, by name
_ENCODABLE: dict[str, type[BaseException]] = {
    name: obj for name, obj in list(globals().items())
    if isinstance(obj, type) and issubclass(obj, BaseException)
    and obj.__module__ == __name__
}


def GetErrorClass(name: str) -> type[BaseException] | None:
    """Return the error class called ``name``, or None if there is none."""
    return _ENCODABLE.get(name)


def _jsonable(value: Any) -> Any:
    """Turn exception arguments into values that JSON can carry."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def EncodeException(err: BaseException) -> list:
    """Encode an exception as ``[class_name, [args...]]`` for the wire."""
    return [err.__class__.__name__, _jsonable(list(err.args))]


def GetEncodedError(result: Any) -> tuple[type[BaseException], tuple] | None:
    """Decode ``[class_name, args]``; None when ``result`` is not an error.

    Unknown class names decode as GenericError, so that an error from a newer
    peer is still reported as an error.
    """
    if (isinstance(result, (list, tuple)) and len(result) == 2
            and isinstance(result[0], str) and isinstance(result[1],
                                                          (list, tuple))):
        errcls = GetErrorClass(result[0])
        if errcls is None:
            return GenericError, (f"{result[0]}: " +
                                  ", ".join(str(a) for a in result[1]),)
        return errcls, tuple(result[1])
    return None


def MaybeRaise(result: Any) -> None:
    """Raise the error encoded in ``result``, if it encodes one."""
    decoded = GetEncodedError(result)
    if decoded is not None:
        errcls, args = decoded
        raise errcls(*args)


def RaiseEncoded(result: Any) -> NoReturn:
    """Raise the error encoded in ``result``; a ProgrammerError otherwise."""
    MaybeRaise(result)
    raise ProgrammerError(f"Not an encoded error: {result!r}")


def GetErrorCode(err: BaseException) -> str:
    """Return the ECODE_* of an error, ECODE_FAULT when it carries none.

    OpPrereqError and friends carry the code as their second argument.
    """
    args: tuple = getattr(err, "args", ())
    if len(args) >= 2 and args[1] in ECODE_ALL:
        return args[1]
    if isinstance(err, (OpPrereqError, ParameterError, TypeEnforcementError,
                        UnitParseError, TagError)):
        return ECODE_INVAL
    if isinstance(err, ResolverError):
        return ECODE_RESOLVER
    return ECODE_FAULT


def FormatError(err: BaseException) -> str:
    """Return a one-line, human-readable message for an error."""
    args: tuple = getattr(err, "args", ())
    if isinstance(err, OpPrereqError) and len(args) >= 2 \
            and args[1] in ECODE_ALL:
        return f"Failure: prerequisites not met for this operation:\n" \
               f"error type: {args[1]}, error details:\n{args[0]}"
    if isinstance(err, OpPrereqError):
        return f"Failure: prerequisites not met for this operation:\n" \
               f"{args[0] if args else err}"
    if not args:
        return err.__class__.__name__
    if len(args) == 1:
        return str(args[0])
    return ", ".join(str(a) for a in args)
