"""Tests for tools/ensure-users (ganeti.tools.ensure_users)."""

from __future__ import annotations

from ganeti import runtime
from ganeti.tools import ensure_users


def test_plan_creates_what_is_missing():
    names = runtime.GetNames({"GANETI_USER_PREFIX": "u-", "GANETI_GROUP_PREFIX": "g-"})
    plan = ensure_users.PlanCreate(names, user_exists=lambda n: n == "u-confd",
                                   group_exists=lambda n: n == "g-admin")
    groups = [cmd[-1] for cmd in plan if cmd[0] == "groupadd"]
    assert groups == ["g-masterd", "g-confd", "g-rapi", "g-daemons"]
    users = {cmd[-1]: cmd for cmd in plan if cmd[0] == "useradd"}
    assert set(users) == {"u-masterd", "u-rapi"}
    masterd = users["u-masterd"]
    assert masterd[masterd.index("--gid") + 1] == "g-masterd"
    assert masterd[masterd.index("--groups") + 1] == "g-daemons,g-confd,g-admin"
    assert "--system" in masterd and "/usr/sbin/nologin" in masterd
    # Groups are created before the users that need them
    assert max(plan.index(["groupadd", "--system", g]) for g in groups) < \
        plan.index(masterd)


def test_plan_remove_and_root_install():
    names = runtime.GetNames({"GANETI_USER_PREFIX": "u-", "GANETI_GROUP_PREFIX": "g-"})
    plan = ensure_users.PlanRemove(names, lambda n: True, lambda n: True)
    assert plan[0] == ["userdel", "u-masterd"]
    assert ["groupdel", "g-admin"] in plan and ["userdel", "root"] not in plan
    root = runtime.GetNames({"GANETI_USER_PREFIX": "root"})
    assert ensure_users.PlanCreate(root, lambda n: False, lambda n: False) == []


def test_dry_run_prints(capsys, monkeypatch):
    monkeypatch.setenv("GANETI_USER_PREFIX", "zz-none-")
    monkeypatch.setenv("GANETI_GROUP_PREFIX", "zz-none-")
    assert ensure_users.Main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "groupadd --system zz-none-admin" in out
    assert "useradd" in out and "zz-none-rapi" in out
