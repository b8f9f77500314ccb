"""The keys of RAPI answers against Ganeti 3.0's (test/data/ganeti30-rapi-keys.json).

The bulk lists and single job go through the RAPI server's request handling
with a fake master answering every query with one row; /2/info is the
master's QueryClusterInfo answer built from a real configuration.
"""

from __future__ import annotations

import base64
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakeluxi import FakeLuxi, FakePool  # noqa: E402
from ganeti import config, constants, objects  # noqa: E402
from ganeti.config import base as config_base  # noqa: E402
from ganeti.luxi.handlers import ClusterInfo  # noqa: E402
from ganeti.rapi import auth, server  # noqa: E402

REFERENCE = os.path.join(os.path.dirname(__file__), "..", "..", "data",
                         "ganeti30-rapi-keys.json")

#: Keys of /2/info that Ganeti's answer lacks (our extensions)
INFO_EXTENSIONS = {"master_ip", "modify_etc_hosts"}


class _AnyQueryLuxi(FakeLuxi):
    """Answers a query of any resource with one row of every field."""

    def Query(self, what, fields, qfilter):
        self._Check("Query", what, fields, qfilter)
        return {"fields": [{"name": f} for f in fields],
                "data": [[[constants.RS_NORMAL, f"value-of-{f}"] for f in fields]]}


@pytest.fixture(scope="module")
def reference():
    with open(REFERENCE, encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture
def rapi(tmp_path):
    users = tmp_path / "users"
    users.write_text("reader pw read\n")
    pool = FakePool()
    pool.client = _AnyQueryLuxi()
    srv = server.RapiServer("127.0.0.1", 0, None, auth.UsersFile(str(users)),
                            pool=pool)  # type: ignore[arg-type]
    user = "Basic " + base64.b64encode(b"reader:pw").decode()

    def _Get(target):
        code, _, payload, _ = srv.HandleRequest(
            "GET", target, {"authorization": user}, b"")
        assert code == 200, payload
        return json.loads(payload)
    _Get.luxi = pool.client
    return _Get


@pytest.mark.parametrize("path", ["/2/instances?bulk=1", "/2/nodes?bulk=1",
                                  "/2/groups?bulk=1", "/2/networks?bulk=1"])
def test_bulk_keys(rapi, reference, path):
    (item,) = rapi(path)
    assert sorted(item) == sorted(reference[path])


def test_job_keys(rapi, reference):
    rapi.luxi.jobs.append([{"OP_ID": "OP_TEST_DELAY"}])
    assert sorted(rapi("/2/jobs/1")) == sorted(reference["/2/jobs/N"])
    (item,) = rapi("/2/jobs?bulk=1")
    assert sorted(item) == sorted(reference["/2/jobs?bulk=1"])


def test_info_keys(tmp_path, reference):
    path = str(tmp_path / "config.data")
    cluster = objects.Cluster(
        cluster_name="cluster.example.com", master_ip="192.0.2.254",
        master_netdev="lo", enabled_hypervisors=[constants.HT_FAKE],
        mac_prefix="aa:00:00", rsahostkeypub="ssh-rsa AAAA", candidate_pool_size=1,
        enabled_disk_templates=[constants.DT_DISKLESS],
        data_collectors={"lv": {"active": False, "interval": 2000000}})
    master = objects.Node(name="node1.example.com", primary_ip="192.0.2.1")
    config_base.InitConfig(constants.CONFIG_VERSION, cluster, master, path)
    info = ClusterInfo(config.ConfigWriter(path, accept_foreign=True))
    ours = set(info)
    ganeti = set(reference["/2/info"])
    assert sorted(ganeti - ours) == [], "keys of Ganeti's /2/info we lack"
    assert sorted(ours - ganeti) == sorted(INFO_EXTENSIONS)
    assert "data_collectors" not in info
    enabled = info[constants.DATA_COLLECTORS_ENABLED_NAME]
    interval = info[constants.DATA_COLLECTORS_INTERVAL_NAME]
    assert set(enabled) == set(interval) == constants.DATA_COLLECTOR_NAMES
    assert enabled["lv"] is False and interval["lv"] == 2000000
    assert enabled["drbd"] is True and interval["drbd"] == 5000000
