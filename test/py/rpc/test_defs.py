"""The RPC call table: both ends are built from it and must agree."""

from __future__ import annotations

import inspect

import pytest

from ganeti import constants
from ganeti.rpc import defs
from ganeti.rpc.dispatch import ResolveHandler
from ganeti.rpc.encoding import ArgKind
from ganeti.rpc.node import RpcRunner

_TIMEOUT_CLASSES = {constants.RPC_TMO_URGENT, constants.RPC_TMO_FAST,
                    constants.RPC_TMO_NORMAL, constants.RPC_TMO_SLOW,
                    constants.RPC_TMO_4HRS, constants.RPC_TMO_1DAY}


@pytest.mark.parametrize("call", list(defs.CALLS.values()), ids=list(defs.CALLS))
def test_handler_matches_declaration(call):
    fn = ResolveHandler(call.handler)
    params = list(inspect.signature(fn).parameters.values())
    positional = [p for p in params
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    assert len(required) <= len(call.args) <= len(positional), \
        f"{call.handler} does not take the {len(call.args)} declared arguments"
    assert fn.__doc__, f"{call.handler} has no docstring"


@pytest.mark.parametrize("call", list(defs.CALLS.values()), ids=list(defs.CALLS))
def test_declaration_is_complete(call):
    assert call.name.isidentifier()
    assert call.doc
    assert len(set(call.arg_names)) == len(call.args)
    assert all(isinstance(arg.kind, ArgKind) for arg in call.args)
    if not callable(call.timeout):
        assert call.timeout in _TIMEOUT_CLASSES
    # The runner has a method for it, documented from the table
    method = getattr(RpcRunner, f"call_{call.name}")
    assert method.__doc__.startswith(call.doc)
    for name in call.arg_names:
        assert name in method.__doc__


def test_ganeti_names_and_timeouts():
    assert defs.CALLS["version"].timeout == constants.RPC_TMO_URGENT
    assert defs.CALLS["version"].accept_offline
    assert defs.CALLS["node_info"].arg_names == ["storage_units", "hv_specs"]
    assert defs.CALLS["upload_file"].args[0].kind is ArgKind.FILE_DETAILS
    assert defs.CALLS["jobqueue_update"].args[1].kind is ArgKind.COMPRESS
    assert defs.CALLS["jobqueue_purge"].single
    assert defs.CALLS["test_delay"].GetTimeout([10]) == 15
    assert defs.CALLS["node_verify"].arg_names == [
        "checkdict", "cluster_name", "all_hvparams", "node_groups", "groups_cfg"]


def test_no_call_runs_or_writes_anything_the_master_names():
    # gnt-cluster command/copyfile go over SSH (issue 15): no arbitrary
    # command or file over RPC; restricted commands only by name
    assert not {"node_run_command", "node_copy_file", "run_command",
                "copy_file"} & set(defs.CALLS)
    assert not hasattr(RpcRunner, "call_node_run_command")
    call = defs.CALLS["restricted_command"]
    assert call.arg_names == ["cmd"] and call.timeout == constants.RPC_TMO_SLOW
    assert call.handler == "ganeti.backend.restricted_commands.RunRestrictedCmd"


def test_duplicate_declaration_refused():
    call = defs.CALLS["version"]
    with pytest.raises(Exception, match="declared twice"):
        defs._BuildTable([call, call])
