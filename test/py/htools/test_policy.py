"""Tests for ganeti.htools.policy."""

import pytest

import htoolshelpers as h
from ganeti.htools import policy
from ganeti.htools.policy import InstanceSpec, IPolicy, PolicyError


def _spec(**kw):
    args = dict(memory=1024, vcpus=1, disk_sizes=(2048,), nic_count=1, spindle_use=1,
                disk_template="drbd")
    args.update(kw)
    return InstanceSpec(**args)


def test_defaults_and_parse():
    pol = IPolicy.from_dict(h.ipolicy(vcpu_ratio=2.5))
    assert pol.vcpu_ratio == 2.5 and pol.spindle_ratio == 32.0
    assert pol.minmax[0][0].memory_size == 128
    assert pol.std.disk_size == 1024
    assert IPolicy.from_dict(pol.to_dict()) == pol
    assert IPolicy.from_dict({}) == IPolicy.default()


def test_spec_violations():
    pol = IPolicy.from_dict(h.ipolicy(disk_templates=["plain", "drbd"]))
    assert policy.spec_violations(pol, _spec()) == []
    assert policy.spec_violations(pol, _spec(memory=64)) == [
        "memory-size value 64 is not in range [128, 32768]"]
    found = policy.spec_violations(pol, _spec(disk_template="file", vcpus=9,
                                              disk_sizes=(10, 2048)))
    assert found[0].startswith("Disk template file is not allowed")
    assert "cpu-count value 9 is not in range [1, 8]" in found
    assert "disk-size value 10 is not in range [1024, 1048576]" in found


def test_multiple_minmax_pairs():
    pol = IPolicy.from_dict(h.ipolicy(minmax=[
        {"min": {"memory-size": 128, "cpu-count": 1, "disk-size": 1024,
                 "disk-count": 1, "nic-count": 1, "spindle-use": 1},
         "max": {"memory-size": 4096, "cpu-count": 2, "disk-size": 10240,
                 "disk-count": 2, "nic-count": 2, "spindle-use": 2}},
        {"min": {"memory-size": 8192, "cpu-count": 4, "disk-size": 10240,
                 "disk-count": 1, "nic-count": 1, "spindle-use": 1},
         "max": {"memory-size": 65536, "cpu-count": 16, "disk-size": 102400,
                 "disk-count": 4, "nic-count": 4, "spindle-use": 4}}]))
    assert policy.spec_violations(pol, _spec(memory=16384, vcpus=8,
                                             disk_sizes=(20480,))) == []
    # between the two ranges: reported against the closest one
    assert len(policy.spec_violations(pol, _spec(memory=6000))) == 1


def test_diskless_needs_no_disk():
    pol = IPolicy.default()
    assert policy.spec_violations(pol, _spec(disk_template="diskless",
                                             disk_sizes=())) == []


@pytest.mark.parametrize("data, expected", [
    ({"minmax": []}, "'minmax' must be a non-empty list"),
    ({"std": {"memory-size": -1}}, "'memory-size' must be a non-negative integer"),
    ({"disk-templates": "drbd"}, "'disk-templates' must be a list"),
    ({"spindle-ratio": 0}, "'spindle-ratio' must be a positive number"),
])
def test_bad_policies(data, expected):
    with pytest.raises(PolicyError, match=expected):
        IPolicy.from_dict(data)
