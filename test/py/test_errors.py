"""Tests for ganeti.errors: the hierarchy and the wire encoding."""

import json

import pytest

from ganeti import errors


def test_hierarchy():
    for cls in (errors.OpPrereqError, errors.OpExecError, errors.ConfigurationError,
                errors.LockError, errors.ResolverError, errors.JobQueueError,
                errors.ProgrammerError):
        assert issubclass(cls, errors.GenericError)
    assert issubclass(errors.JobQueueDrainError, errors.JobQueueError)
    assert issubclass(errors.ConfigVersionMismatch, errors.ConfigurationError)
    assert issubclass(errors.HooksAbort, errors.HooksFailure)
    assert not issubclass(errors.QuitGanetiException, errors.GenericError)


def test_encode_round_trip_through_json():
    err = errors.OpPrereqError("Instance 'x' unknown", errors.ECODE_NOENT)
    wire = json.loads(json.dumps(errors.EncodeException(err)))
    assert wire == ["OpPrereqError", ["Instance 'x' unknown", "unknown_entity"]]
    with pytest.raises(errors.OpPrereqError) as info:
        errors.MaybeRaise(wire)
    assert info.value.args == ("Instance 'x' unknown", errors.ECODE_NOENT)
    assert errors.GetErrorCode(info.value) == errors.ECODE_NOENT


def test_encode_non_json_args():
    err = errors.OpExecError({1, 2}, object())
    name, args = errors.EncodeException(err)
    assert name == "OpExecError"
    assert sorted(args[0]) == [1, 2]
    assert isinstance(args[1], str)
    json.dumps(args)


def test_unknown_class_becomes_generic_error():
    with pytest.raises(errors.GenericError) as info:
        errors.MaybeRaise(["NoSuchError", ["boom", 1]])
    assert type(info.value) is errors.GenericError
    assert "NoSuchError" in str(info.value) and "boom" in str(info.value)


@pytest.mark.parametrize("value", [None, 1, "x", [], ["a"], ["a", "b"], [1, []],
                                   {"a": []}])
def test_maybe_raise_ignores_non_errors(value):
    errors.MaybeRaise(value)
    assert errors.GetEncodedError(value) is None


def test_raise_encoded_requires_error():
    with pytest.raises(errors.ProgrammerError):
        errors.RaiseEncoded("not an error")
    with pytest.raises(errors.LockError):
        errors.RaiseEncoded(["LockError", ["held"]])


def test_only_our_classes_are_decodable():
    assert errors.GetErrorClass("ValueError") is None
    assert errors.GetErrorClass("Exception") is None
    assert errors.GetErrorClass("OpExecError") is errors.OpExecError


def test_error_codes_and_format():
    assert errors.GetErrorCode(errors.OpExecError("x")) == errors.ECODE_FAULT
    assert errors.GetErrorCode(errors.OpPrereqError("x")) == errors.ECODE_INVAL
    assert errors.GetErrorCode(errors.ResolverError("h", 1, "x")) == errors.ECODE_RESOLVER
    msg = errors.FormatError(errors.OpPrereqError("bad size", errors.ECODE_INVAL))
    assert "wrong_input" in msg and "bad size" in msg
    assert errors.FormatError(errors.OpExecError("failed")) == "failed"
    assert errors.FormatError(errors.LockError()) == "LockError"


def test_device_creation_error_keeps_devices():
    err = errors.DeviceCreationError("failed", ["disk0"])
    assert err.created_devices == ["disk0"]
    assert errors.DeviceCreationError("x").created_devices == []
