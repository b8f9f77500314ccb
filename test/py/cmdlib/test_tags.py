"""Tests for the tag LUs (run through mcpu) and the shared tag commands."""

from __future__ import annotations

import io
import os
import sys
from types import SimpleNamespace

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "query"))

import instcfg  # noqa: E402

from ganeti import constants, errors, mcpu, objects, opcodes  # noqa: E402
from ganeti.cli import tags as cli_tags  # noqa: E402
from ganeti.server import masterd  # noqa: E402


class Callbacks(mcpu.OpExecCbBase):
    def __init__(self):
        self.feedback = []

    def Feedback(self, *args):
        self.feedback.append(args)


@pytest.fixture
def ctx(tmp_path):
    cfg = instcfg.MakeConfig(str(tmp_path / "config.data"), 3, 4)
    cfg.AddNetwork(objects.Network(name="net1", network="10.0.0.0/24"), "ec")
    return SimpleNamespace(cfg=cfg, glm=masterd.BuildLockManager(cfg), rpc=None)


def _Run(ctx, op):
    return mcpu.Processor(ctx, ec_id=1).ExecOpCode(op, Callbacks())


def _Get(ctx, kind, name=None):
    return _Run(ctx, opcodes.OpTagsGet(kind=kind, name=name))


def _Set(ctx, kind, name, tags):
    return _Run(ctx, opcodes.OpTagsSet(kind=kind, name=name, tags=tags))


def _Del(ctx, kind, name, tags):
    return _Run(ctx, opcodes.OpTagsDel(kind=kind, name=name, tags=tags))


@pytest.mark.parametrize("kind,name", [
    (constants.TAG_CLUSTER, None),
    (constants.TAG_NODE, "node1"),                      # short name expanded
    (constants.TAG_NODE, "node2.example.com"),
    (constants.TAG_INSTANCE, "inst3"),
    (constants.TAG_NODEGROUP, "default"),
    (constants.TAG_NETWORK, "net1"),
])
def test_add_list_remove(ctx, kind, name):
    before = _Get(ctx, kind, name)
    _Set(ctx, kind, name, ["b-tag", "a:tag", "b-tag"])
    assert _Get(ctx, kind, name) == sorted(set(before) | {"a:tag", "b-tag"})
    _Del(ctx, kind, name, ["b-tag"])
    assert _Get(ctx, kind, name) == sorted(set(before) | {"a:tag"})


def test_tags_are_stored(ctx):
    _Set(ctx, constants.TAG_NODE, "node1", ["rack:1"])
    assert "rack:1" in ctx.cfg.GetNodeInfoByName("node1.example.com").tags
    _Set(ctx, constants.TAG_CLUSTER, None, ["prod"])
    assert ctx.cfg.GetClusterInfo().tags == {"prod"}


@pytest.mark.parametrize("kind,name,match", [
    (constants.TAG_NODE, "nosuchnode", "Node 'nosuchnode' not known"),
    (constants.TAG_INSTANCE, "nosuch", "Instance 'nosuch' not known"),
    (constants.TAG_NODEGROUP, "nosuch", "Node group 'nosuch' not found"),
    (constants.TAG_NETWORK, "nosuch", "Network 'nosuch' not found"),
])
def test_unknown_object(ctx, kind, name, match):
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        _Set(ctx, kind, name, ["x"])
    assert info.value.args[1] == errors.ECODE_NOENT
    with pytest.raises(errors.OpPrereqError, match=match):
        _Get(ctx, kind, name)
    assert ctx.cfg.GetConfigSerialNo() == serial


def test_missing_name(ctx):
    with pytest.raises(errors.OpPrereqError, match="need the node's name"):
        _Get(ctx, constants.TAG_NODE, None)


@pytest.mark.parametrize("tag,match", [
    ("bad tag", "invalid characters"),
    ("", "cannot be empty"),
    ("x" * (constants.MAX_TAG_LEN + 1), "too long"),
])
def test_invalid_tags(ctx, tag, match):
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.TagError, match=match):
        _Set(ctx, constants.TAG_INSTANCE, "inst1", ["good", tag])
    assert _Get(ctx, constants.TAG_INSTANCE, "inst1") == ["t1"]
    assert ctx.cfg.GetConfigSerialNo() == serial


def test_too_many_tags(ctx, monkeypatch):
    monkeypatch.setattr(constants, "MAX_TAGS_PER_OBJ", 3)
    _Set(ctx, constants.TAG_CLUSTER, None, ["a", "b"])
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.TagError, match="would have 4 tags .at most 3"):
        _Set(ctx, constants.TAG_CLUSTER, None, ["c", "d"])
    assert ctx.cfg.GetConfigSerialNo() == serial
    _Set(ctx, constants.TAG_CLUSTER, None, ["a", "c"])     # 3 is fine
    assert _Get(ctx, constants.TAG_CLUSTER) == ["a", "b", "c"]


def test_remove_missing(ctx):
    _Set(ctx, constants.TAG_NODE, "node0", ["present"])
    with pytest.raises(errors.OpPrereqError, match="Tag\\(s\\) 'gone', 'zz' not found") \
            as info:
        _Del(ctx, constants.TAG_NODE, "node0", ["present", "zz", "gone"])
    assert info.value.args[1] == errors.ECODE_NOENT
    assert _Get(ctx, constants.TAG_NODE, "node0") == ["present"]


def test_search(ctx):
    _Set(ctx, constants.TAG_CLUSTER, None, ["site:ams"])
    _Set(ctx, constants.TAG_NODE, "node2", ["site:fra", "other"])
    _Set(ctx, constants.TAG_NODEGROUP, "default", ["site:x"])
    _Set(ctx, constants.TAG_NETWORK, "net1", ["site:net"])
    result = _Run(ctx, opcodes.OpTagsSearch(pattern="^site:"))
    assert result == [("/cluster", "site:ams"), ("/nodes/node2.example.com", "site:fra"),
                      ("/nodegroup/default", "site:x"), ("/networks/net1", "site:net")]
    assert _Run(ctx, opcodes.OpTagsSearch(pattern="^t[03]$")) == [
        ("/instances/inst0.example.com", "t0"), ("/instances/inst3.example.com", "t3")]
    with pytest.raises(errors.OpPrereqError,
                       match="pattern.*regular expression.*got '\\('") as info:
        _Run(ctx, opcodes.OpTagsSearch(pattern="("))
    assert info.value.args[1] == errors.ECODE_INVAL


# --- the shared commands -----------------------------------------------------------------

@pytest.fixture
def cli_ctx(ctx, monkeypatch, capsys):
    """Make the tag commands run their opcodes here instead of via luxi."""
    def _Submit(op, cl=None, feedback_fn=None, opts=None, reporter=None):
        return _Run(ctx, op)

    def _SubmitOrSend(op, opts, cl=None, feedback_fn=None):
        return _Run(ctx, op)

    monkeypatch.setattr(cli_tags.jobs, "SubmitOpCode", _Submit)
    monkeypatch.setattr(cli_tags.jobs, "SubmitOrSend", _SubmitOrSend)
    return ctx


def _Opts(**kwargs):
    values = {"tags_source": None, "submit_only": False}
    values.update(kwargs)
    return SimpleNamespace(**values)


def test_cli_commands(cli_ctx, tmp_path, monkeypatch, capsys):
    cmds = cli_tags.TagCommands(constants.TAG_NODE)
    assert set(cmds) == {"list-tags", "add-tags", "remove-tags"}
    tagfile = tmp_path / "tags"
    tagfile.write_text("from-file\n\n  spaced  \n", encoding="utf-8")
    assert cmds["add-tags"][0](_Opts(tags_source=str(tagfile)),
                               ["node1", "cmdline"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("stdin-tag\n"))
    assert cli_tags.AddTags(constants.TAG_NODE, _Opts(tags_source="-"), ["node1"]) == 0
    capsys.readouterr()
    assert cmds["list-tags"][0](_Opts(), ["node1"]) == 0
    assert capsys.readouterr().out.split() == ["cmdline", "from-file", "spaced",
                                               "stdin-tag"]
    assert cmds["remove-tags"][0](_Opts(), ["node1", "spaced", "stdin-tag"]) == 0
    assert _Get(cli_ctx, constants.TAG_NODE, "node1") == ["cmdline", "from-file"]
    ccmds = cli_tags.TagCommands(constants.TAG_CLUSTER)
    assert ccmds["add-tags"][0](_Opts(), ["c1"]) == 0
    assert cli_tags.SearchTags(_Opts(), ["^c"]) == 0
    out = capsys.readouterr().out
    assert "/cluster c1\n" in out and "/nodes/node1.example.com cmdline\n" in out
    assert cli_tags.SearchTags(_Opts(), ["^nomatch$"]) == 1


def test_cli_bad_input(cli_ctx, tmp_path):
    with pytest.raises(errors.OpPrereqError, match="no arguments"):
        cli_tags.ListTags(constants.TAG_INSTANCE, _Opts(), [])
    with pytest.raises(errors.OpPrereqError, match="No tags to be added"):
        cli_tags.AddTags(constants.TAG_INSTANCE, _Opts(), ["inst1"])
    with pytest.raises(errors.OpPrereqError, match="No tags to be removed"):
        cli_tags.RemoveTags(constants.TAG_CLUSTER, _Opts(), [])
    with pytest.raises(errors.OpPrereqError, match="Cannot read tags from"):
        cli_tags.AddTags(constants.TAG_CLUSTER,
                         _Opts(tags_source=str(tmp_path / "missing")), [])
