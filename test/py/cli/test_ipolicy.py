"""Tests for the instance policy options (ganeti.cli.ipolicy)."""

from __future__ import annotations

import argparse

import pytest

from ganeti import constants, errors
from ganeti.cli import ipolicy

MIN, MAX, STD = constants.ISPECS_MIN, constants.ISPECS_MAX, constants.ISPECS_STD
MINMAX = constants.ISPECS_MINMAX
MEM, CPU = constants.ISPEC_MEM_SIZE, constants.ISPEC_CPU_COUNT


def _Parse(argv, **kwargs):
    parser = argparse.ArgumentParser()
    for opt in ipolicy.ALL_IPOLICY_OPTS:
        opt.AddTo(parser)
    return ipolicy.CreateIPolicyFromOpts(parser.parse_args(argv), **kwargs)


def _Fails(argv, match, **kwargs):
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        _Parse(argv, **kwargs)
    assert info.value.args[1] == errors.ECODE_INVAL


def test_no_options_no_policy():
    assert _Parse([]) == {}


def test_split_specs():
    result = _Parse(["--specs-mem-size", "min=128,max=1G,std=256",
                     "--specs-cpu-count", "max=4"])
    assert result == {MINMAX: [{MIN: {MEM: 128}, MAX: {MEM: 1024, CPU: 4}}],
                      STD: {MEM: 256}}


def test_split_specs_std_only():
    assert _Parse(["--specs-nic-count", "std=2"]) == {
        STD: {constants.ISPEC_NIC_COUNT: 2}}


def test_split_specs_fill_all():
    result = _Parse(["--specs-mem-size", "max=4096"], fill_all=True)
    assert result[MINMAX][0][MAX][MEM] == 4096
    assert result[MINMAX][0][MIN] == constants.ISPECS_MINMAX_DEFAULTS[MIN]
    assert result[STD] == constants.IPOLICY_DEFAULTS[STD]


def test_bounds_and_std():
    result = _Parse(["--ipolicy-bounds-specs",
                     "min:memory-size=128,cpu-count=1/max:memory-size=512,cpu-count=2"
                     "//min:memory-size=1024/max:memory-size=2048",
                     "--ipolicy-std-specs", "memory-size=256"])
    assert result[MINMAX] == [
        {MIN: {MEM: 128, CPU: 1}, MAX: {MEM: 512, CPU: 2}},
        {MIN: {MEM: 1024}, MAX: {MEM: 2048}}]
    assert result[STD] == {MEM: 256}


def test_templates_and_ratios():
    result = _Parse(["--ipolicy-disk-templates", "file,diskless,file",
                     "--ipolicy-vcpu-ratio", "2.5", "--ipolicy-spindle-ratio", "16"])
    assert result == {constants.IPOLICY_DTS: ["file", "diskless"],
                      constants.IPOLICY_VCPU_RATIO: 2.5,
                      constants.IPOLICY_SPINDLE_RATIO: 16.0}


def test_default_values():
    argv = ["--ipolicy-vcpu-ratio", "default", "--ipolicy-bounds-specs", "default",
            "--ipolicy-disk-templates", "default"]
    result = _Parse(argv, allow_default=True)
    assert result == {constants.IPOLICY_VCPU_RATIO: constants.VALUE_DEFAULT,
                      MINMAX: constants.VALUE_DEFAULT,
                      constants.IPOLICY_DTS: constants.VALUE_DEFAULT}
    _Fails(argv, "'default' is not allowed for --ipolicy-bounds-specs")


@pytest.mark.parametrize("argv,match", [
    (["--specs-mem-size", "low=1"], "Invalid key 'low' in --specs-mem-size"),
    (["--specs-mem-size", "min"], "Invalid item 'min' in --specs-mem-size"),
    (["--specs-cpu-count", "max=two"], "Invalid value 'two' for cpu-count"),
    (["--specs-cpu-count", "max=-1"], "Invalid value '-1' for cpu-count"),
    (["--specs-disk-size", "max=10X"], "Invalid value '10X' for disk-size"),
    (["--ipolicy-std-specs", "memory-sise=128"],
     "Unknown instance spec 'memory-sise' in --ipolicy-std-specs"),
    (["--ipolicy-bounds-specs", "min:memory-size=1"],
     "Missing 'max' bounds in --ipolicy-bounds-specs \\(pair #0\\)"),
    (["--ipolicy-bounds-specs", "low:memory-size=1/max:memory-size=2"],
     "Invalid bounds key 'low'"),
    (["--ipolicy-bounds-specs", "min:memory-size=1/max:nics=2"],
     "Unknown instance spec 'nics' in --ipolicy-bounds-specs \\(max, pair #0\\)"),
    (["--ipolicy-bounds-specs", "memory-size=1"], "Invalid bounds 'memory-size=1'"),
    (["--ipolicy-disk-templates", "file,floppy"],
     "Unknown disk template\\(s\\) in --ipolicy-disk-templates: floppy"),
    (["--ipolicy-vcpu-ratio", "fast"], "Invalid value 'fast' for --ipolicy-vcpu-ratio"),
    (["--ipolicy-spindle-ratio", "0"], "Invalid value '0' for --ipolicy-spindle-ratio"),
    (["--ipolicy-spindle-ratio", "-3"], "expected a positive number"),
    (["--specs-mem-size", "max=1", "--ipolicy-std-specs", "memory-size=1"],
     "cannot be specified together"),
])
def test_bad_input(argv, match):
    _Fails(argv, match)


# --- the tools using the options ----------------------------------------------------

def test_tools_carry_the_options_and_tag_commands():
    from ganeti.client import gnt_cluster, gnt_group, gnt_node
    for name in ("add", "modify"):
        flags = {flag for opt in gnt_group.commands[name][2] for flag in opt.flags}
        assert {"--specs-mem-size", "--ipolicy-bounds-specs", "--ipolicy-std-specs",
                "--ipolicy-disk-templates", "--ipolicy-vcpu-ratio",
                "--ipolicy-spindle-ratio", "--alloc-policy",
                "--node-parameters"} <= flags
    for table in (gnt_cluster.commands, gnt_node.commands, gnt_group.commands):
        assert {"list-tags", "add-tags", "remove-tags"} <= set(table)
    assert "search-tags" in gnt_cluster.commands
    assert {"add", "remove", "rename", "list", "list-fields", "info", "modify",
            "assign-nodes"} <= set(gnt_group.commands)


def test_group_policy_info():
    from ganeti import objects
    from ganeti.client import gnt_group
    custom = {constants.IPOLICY_VCPU_RATIO: 2.0,
              MINMAX: [{MIN: dict(constants.ISPECS_MINMAX_DEFAULTS[MIN]),
                        MAX: dict(constants.ISPECS_MINMAX_DEFAULTS[MAX], **{MEM: 512})}]}
    filled = objects.FillIPolicy(constants.IPOLICY_DEFAULTS, custom)
    items = dict(gnt_group.PolicyInfo(custom, filled))
    assert items[constants.IPOLICY_VCPU_RATIO] == "2.0"
    assert items[constants.IPOLICY_SPINDLE_RATIO] == "default (32.0)"
    assert items["allowed disk templates"].startswith("default (")
    bounds = dict(items["bounds specs"][0])
    assert (MEM, "512") in bounds["max/0"]
    assert "std" not in items
