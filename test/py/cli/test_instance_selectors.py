"""Tests for the multi-instance selection of gnt-instance startup,
shutdown, reboot and reinstall (ganeti.cli.selectors), against a fake luxi
client answering queries from a small fake cluster."""

from __future__ import annotations

import pytest
from clihelpers import Field, SuccessJob

from ganeti import constants, errors
from ganeti.cli import selectors
from ganeti.client import gnt_instance

N = constants.RS_NORMAL

#: instance -> (primary node, secondary nodes, tags)
_INSTANCES = {
    "i1.example.com": ("n1", ["n2"], ["web"]),
    "i2.example.com": ("n2", [], ["db", "web"]),
    "i3.example.com": ("n1", [], []),
    "i4.example.com": ("n3", ["n1"], ["db"]),
}
#: node -> tags
_NODES = {"n1": ["rack1"], "n2": ["rack2"], "n3": ["rack2", "ssd"]}


def _Matches(name, wanted):
    return name == wanted or name.startswith(wanted + ".")


def _Wanted(qfilter, known, what):
    """The names of a simple name filter; unknown ones refused as the master
    does."""
    if qfilter is None:
        return list(known)
    assert qfilter[0] == "|"
    wanted = [cond[2] for cond in qfilter[1:]]
    result = []
    for name in wanted:
        found = [item for item in known if _Matches(item, name)]
        if not found:
            raise errors.OpPrereqError(f"{what} '{name}' not known", errors.ECODE_NOENT)
        result.extend(found)
    return result


def _InstanceQuery(fields, qfilter):
    rows = []
    for name in _Wanted(qfilter, _INSTANCES, "Instance"):
        pnode, snodes, tags = _INSTANCES[name]
        values = {"name": name, "pnode": pnode, "snodes": snodes, "tags": tags}
        rows.append([[N, values[field]] for field in fields])
    return {"fields": [Field(f) for f in fields], "data": rows}


def _NodeQuery(fields, qfilter):
    rows = []
    for name in _Wanted(qfilter, _NODES, "Node"):
        values = {
            "name": name, "tags": _NODES[name],
            "pinst_list": [i for i, data in _INSTANCES.items() if data[0] == name],
            "sinst_list": [i for i, data in _INSTANCES.items() if name in data[1]],
        }
        rows.append([[N, values[field]] for field in fields])
    return {"fields": [Field(f) for f in fields], "data": rows}


@pytest.fixture
def cluster(fake_client):
    fake_client.query[constants.QR_INSTANCE] = _InstanceQuery
    fake_client.query[constants.QR_NODE] = _NodeQuery
    return fake_client


@pytest.fixture
def asked(monkeypatch):
    """Records the questions asked; answers with ``asked.answer``."""
    class _Asked(list):
        answer: object = True
    record = _Asked()

    def _Ask(text, choices=None):
        record.append((text, choices))
        return record.answer
    monkeypatch.setattr(selectors, "AskUser", _Ask)
    monkeypatch.setattr(gnt_instance.cli, "AskUser", _Ask)
    return record


def _Run(*argv):
    return gnt_instance.Main(["gnt-instance", *argv])


def _Targets(client):
    return [ops[0]["instance_name"] for ops in client.submitted]


# --- resolution of each selector ----------------------------------------------------------

@pytest.mark.parametrize("mode,args,expected", [
    (None, ["i2", "i1"], ["i2.example.com", "i1.example.com"]),
    (selectors.EXPAND_INSTANCES, ["i3.example.com"], ["i3.example.com"]),
    (selectors.EXPAND_CLUSTER, [], sorted(_INSTANCES)),
    (selectors.EXPAND_NODES_BOTH, ["n1"],
     ["i1.example.com", "i3.example.com", "i4.example.com"]),
    (selectors.EXPAND_NODES_PRI, ["n1"], ["i1.example.com", "i3.example.com"]),
    (selectors.EXPAND_NODES_SEC, ["n1"], ["i4.example.com"]),
    (selectors.EXPAND_NODES_SEC, ["n3"], []),
    (selectors.EXPAND_NODES_BOTH, ["n1", "n2"],
     ["i1.example.com", "i3.example.com", "i4.example.com", "i2.example.com"]),
    (selectors.EXPAND_INSTANCES_BY_TAGS, ["web"], ["i1.example.com", "i2.example.com"]),
    (selectors.EXPAND_INSTANCES_BY_TAGS, ["db", "nosuch"],
     ["i2.example.com", "i4.example.com"]),
    (selectors.EXPAND_NODES_BOTH_BY_TAGS, ["ssd"], ["i4.example.com"]),
    (selectors.EXPAND_NODES_PRI_BY_TAGS, ["rack2"], ["i2.example.com", "i4.example.com"]),
    (selectors.EXPAND_NODES_SEC_BY_TAGS, ["rack2"], ["i1.example.com"]),
    (selectors.EXPAND_NODES_BOTH_BY_TAGS, ["nosuch"], []),
])
def test_expand_multi_names(cluster, mode, args, expected):
    assert selectors.ExpandMultiNames(mode, args, cl=cluster) == expected


def test_expand_queries_by_name(cluster):
    selectors.ExpandMultiNames(selectors.EXPAND_NODES_PRI, ["n2"], cl=cluster)
    assert cluster.calls[-1] == ("Query", (constants.QR_NODE,
                                           ["name", "pinst_list", "sinst_list"],
                                           ["|", ["=", "name", "n2"]]))


@pytest.mark.parametrize("mode,args,message", [
    (selectors.EXPAND_CLUSTER, ["i1"], "takes no arguments"),
    (selectors.EXPAND_INSTANCES, [], "No instance names"),
    (selectors.EXPAND_NODES_BOTH, [], "No node names"),
    (selectors.EXPAND_NODES_PRI_BY_TAGS, [], "No node tags"),
    (selectors.EXPAND_INSTANCES_BY_TAGS, [], "No instance tags"),
    (selectors.EXPAND_INSTANCES, ["nosuch"], "Instance 'nosuch' not known"),
    (selectors.EXPAND_NODES_SEC, ["n9"], "Node 'n9' not known"),
    ("sideways", ["x"], "Unknown selection mode"),
])
def test_expand_bad_selection(cluster, mode, args, message):
    with pytest.raises(errors.OpPrereqError, match=message):
        selectors.ExpandMultiNames(mode, args, cl=cluster)


# --- the commands --------------------------------------------------------------------------

def test_single_instance_needs_no_confirmation(cluster, asked, capsys):
    assert _Run("shutdown", "--timeout", "5", "--submit", "i1") == 0
    assert not asked
    (ops,) = cluster.submitted
    assert (ops[0]["OP_ID"], ops[0]["instance_name"], ops[0]["timeout"]) == \
        ("OP_INSTANCE_SHUTDOWN", "i1.example.com", 5)
    assert capsys.readouterr().out == "1: i1.example.com\n"


def test_several_instances_ask_listing_them(cluster, asked):
    asked.answer = False
    assert _Run("startup", "--node", "n1") == constants.EXIT_FAILURE
    assert not cluster.submitted
    ((text, choices),) = asked
    assert text.startswith("The startup will operate on 3 instances.\n")
    assert "Affected instances:\n  i1.example.com\n  i3.example.com\n" \
           "  i4.example.com" in text
    assert [c[0] for c in choices] == ["y", "n"]


def test_confirmation_yes_submits_all(cluster, asked, capsys):
    asked.answer = True
    assert _Run("reboot", "--type", "soft", "--tags", "web", "--submit") == 0
    assert len(asked) == 1
    assert _Targets(cluster) == ["i1.example.com", "i2.example.com"]
    assert cluster.calls[-1][0] == "SubmitManyJobs"
    assert all(ops[0]["reboot_type"] == "soft" for ops in cluster.submitted)
    assert capsys.readouterr().out == "1: i1.example.com\n2: i2.example.com\n"


def test_force_multiple_skips_the_question(cluster, asked):
    assert _Run("shutdown", "--all", "--force-multiple", "--submit") == 0
    assert not asked
    assert _Targets(cluster) == sorted(_INSTANCES)


def test_instance_tags_spelling_and_last_mode_wins(cluster, asked):
    assert _Run("startup", "--node", "--instance-tags", "db", "--force-multiple",
                "--submit") == 0
    assert _Targets(cluster) == ["i2.example.com", "i4.example.com"]


def test_two_names_ask_too(cluster, asked):
    asked.answer = False
    assert _Run("shutdown", "i1", "i2") == constants.EXIT_FAILURE
    assert len(asked) == 1 and not cluster.submitted


def test_many_instances_offer_to_view_the_list(cluster, asked, monkeypatch):
    names = [f"x{idx}" for idx in range(25)]
    answers = ["v", True]
    monkeypatch.setattr(selectors, "AskUser",
                        lambda text, choices: (asked.append((text, choices)),
                                               answers.pop(0))[1])
    assert selectors.ConfirmOperation(names, "instances", "shutdown") is True
    (first, _), (second, choices) = asked
    assert "x0" not in first and "  x24" in second
    assert [c[0] for c in choices] == ["y", "n"]


def test_no_match(cluster, asked, capsys):
    assert _Run("startup", "--secondary", "n3") == constants.EXIT_FAILURE
    assert "does not match any instances" in capsys.readouterr().err
    cluster.query[constants.QR_INSTANCE] = lambda fields, qfilter: \
        {"fields": [Field(f) for f in fields], "data": []}
    assert _Run("shutdown", "--all") == constants.EXIT_SUCCESS
    assert "Cluster is empty" in capsys.readouterr().out
    assert not cluster.submitted


def test_all_takes_no_arguments(cluster, asked, capsys):
    assert _Run("startup", "--all", "i1") == constants.EXIT_FAILURE
    assert "takes no arguments" in capsys.readouterr().err
    assert not cluster.submitted and not asked


def test_jobs_are_submitted_together_then_waited_for(cluster, asked, capsys):
    ok = [[constants.JOB_STATUS_SUCCESS], []]
    cluster.wfjc = [ok, [[constants.JOB_STATUS_ERROR], []]]
    cluster.jobs[1] = SuccessJob(1)
    cluster.jobs[2] = {"status": constants.JOB_STATUS_ERROR,
                       "opstatus": [constants.OP_STATUS_ERROR],
                       "opresult": [errors.EncodeException(
                           errors.OpPrereqError("Instance is offline", "wrong_state"))]}
    assert _Run("startup", "--primary", "n1", "--force-multiple") == \
        constants.EXIT_FAILURE
    names = cluster.CallNames()
    assert names.index("SubmitManyJobs") < names.index("WaitForJobChangeOnce")
    assert names.count("SubmitManyJobs") == 1
    out, err = capsys.readouterr()
    assert "Waiting for job 1 for i1.example.com ..." in out
    assert "Job 2 for i3.example.com has failed" in err
    assert "Instance is offline" in err


def test_all_jobs_succeed(cluster, asked):
    ok = [[constants.JOB_STATUS_SUCCESS], []]
    cluster.wfjc = [ok, ok]
    cluster.jobs = {1: SuccessJob(1), 2: SuccessJob(2)}
    assert _Run("shutdown", "--pri-node-tags", "rack2", "--force-multiple",
                "--priority", "high", "--dry-run") == 0
    assert all(ops[0]["priority"] == constants.OP_PRIO_HIGH and ops[0]["dry_run"]
               for ops in cluster.submitted)


def test_print_jobid(cluster, asked, capsys):
    assert _Run("reboot", "--secondary", "n1", "--submit", "--print-jobid") == 0
    assert capsys.readouterr().out == "1\n1: i4.example.com\n"


def test_reinstall_multi_needs_force_multiple(cluster, asked):
    asked.answer = False
    # --force covers one instance only
    assert _Run("reinstall", "-f", "--node", "n2") == constants.EXIT_FAILURE
    ((text, _),) = asked
    assert "reinstall will operate on 2 instances" in text
    assert "remove *all* data" in text and "keep the same OS" in text
    assert not cluster.submitted
    asked.clear()
    assert _Run("reinstall", "--force-multiple", "-o", "noop+small", "--primary",
                "n1", "--submit") == 0
    assert not asked
    assert [(ops[0]["OP_ID"], ops[0]["instance_name"], ops[0]["os_type"])
            for ops in cluster.submitted] == [
        ("OP_INSTANCE_REINSTALL", "i1.example.com", "noop+small"),
        ("OP_INSTANCE_REINSTALL", "i3.example.com", "noop+small")]


def test_reinstall_single(cluster, asked):
    asked.answer = False
    assert _Run("reinstall", "i3") == constants.EXIT_CONFIRMATION
    assert "reinstall the instance 'i3.example.com'" in asked[0][0]
    assert _Run("reinstall", "-f", "--submit", "i3") == 0
    assert _Targets(cluster) == ["i3.example.com"]


def test_reinstall_has_no_tag_selectors(cluster, asked, capsys):
    assert _Run("reinstall", "--tags", "web") == 2
    assert "--tags" in capsys.readouterr().err
