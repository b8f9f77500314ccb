"""hypervisor.base: parameter checks and the hypervisor registry."""

from __future__ import annotations

import pytest

from ganeti import constants, errors, hypervisor
from ganeti.hypervisor import base
from ganeti.hypervisor.hv_fake import FakeHypervisor
from ganeti.hypervisor.hv_kvm import KVMHypervisor


class _Hv(base.BaseHypervisor):
    PARAMETERS = {
        "kernel": base.OPT_FILE_CHECK,
        "port": base.NET_PORT_CHECK,
        "mode": base.ParamInSet(True, ["a", "b"]),
        "mask": base.OPT_CPU_MASK_CHECK,
    }


def test_registry():
    assert isinstance(hypervisor.GetHypervisor(constants.HT_FAKE), FakeHypervisor)
    assert hypervisor.GetHypervisorClass(constants.HT_FAKE) is FakeHypervisor
    assert hypervisor.GetAvailableHypervisors() == [constants.HT_FAKE, constants.HT_KVM]
    assert hypervisor.GetHypervisorClass(constants.HT_KVM) is KVMHypervisor


@pytest.mark.parametrize("name,match", [
    ("bogus", "Unknown hypervisor 'bogus'"),
    (constants.HT_LXC, "'lxc' is not implemented"),
])
def test_registry_bad(name, match):
    with pytest.raises(errors.HypervisorError, match=match):
        hypervisor.GetHypervisorClass(name)


def test_syntax_ok():
    _Hv.CheckParameterSyntax({"kernel": "", "port": 80, "mode": "a", "mask": "0-1:3"})
    _Hv.CheckParameterSyntax({"port": 1, "mode": "b"})


@pytest.mark.parametrize("params,match", [
    ({"port": 80, "mode": "a", "extra": 1}, "extra not supported"),
    ({"mode": "a"}, "'port' is required"),
    ({"port": 0, "mode": "a"}, "'port' fails syntax check.*current value: '0'"),
    ({"port": 1, "mode": "c"}, "'mode' fails syntax check: must be one of a, b"),
    ({"port": 1, "mode": "a", "kernel": "rel/path"}, "absolute normalized path"),
    ({"port": 1, "mode": "a", "mask": "1-0"}, "not well-formed"),
])
def test_syntax_bad(params, match):
    with pytest.raises(errors.HypervisorError, match=match):
        _Hv.CheckParameterSyntax(params)


def test_validate(tmp_path):
    kernel = tmp_path / "vmlinuz"
    hv = _Hv()
    with pytest.raises(errors.HypervisorError, match="'kernel' fails validation: not found"):
        hv.ValidateParameters({"kernel": str(kernel), "port": 1, "mode": "a"})
    kernel.write_text("x")
    hv.ValidateParameters({"kernel": str(kernel), "port": 1, "mode": "a"})
    hv.ValidateParameters({"kernel": "", "port": 1, "mode": "a"})


def test_fake_parameters():
    FakeHypervisor.CheckParameterSyntax(constants.HVC_DEFAULTS[constants.HT_FAKE])
    with pytest.raises(errors.HypervisorError, match="migration_mode"):
        FakeHypervisor.CheckParameterSyntax({constants.HV_MIGRATION_MODE: "teleport"})


def test_instance_state():
    assert base.HvInstanceState.IsRunning(base.HvInstanceState.RUNNING)
    assert base.HvInstanceState.IsShutdown(base.HvInstanceState.SHUTDOWN)
    assert not base.HvInstanceState.IsRunning(base.HvInstanceState.SHUTDOWN)
