"""Tests for ganeti.htools.loader_rapi: the cluster through RAPI.

A fake RAPI client answers ``/2/info``, ``/2/tags`` and the bulk
``/2/groups``, ``/2/nodes``, ``/2/instances`` as our RAPI does (the
rlib2 field lists, node and backend parameters as dicts, None for values
the master has not); its data is the luxi tests' cluster, so both loaders
must build the same model.
"""

from __future__ import annotations

import copy
import socket
from typing import Any

import pytest

from ganeti import constants
from ganeti.htools import loader_iallocator, loader_luxi, loader_rapi
from ganeti.htools.loader_iallocator import InputError
from ganeti.htools.loader_rapi import Endpoint, parse_endpoint
from ganeti.rapi import client as rapi_client
from ganeti.rapi import rlib2_instances, rlib2_nodes

from test_loader_luxi import (MASTER, FakeLuxi, Status, assert_same_cluster,
                              records_from_message, sample_message)


def _plain(val: Any) -> Any:
    return None if isinstance(val, Status) else copy.deepcopy(val)


def rapi_answers(records: dict[str, Any]) -> dict[str, Any]:
    """The RAPI bulk answers for the luxi tests' records."""
    nodes = []
    for rec in records[constants.QR_NODE]:
        item = {f: _plain(rec.get(f)) for f in rlib2_nodes.N_FIELDS}
        item["ndparams"] = {
            "spindle_count": rec["ndp/spindle_count"],
            "exclusive_storage": rec["ndp/exclusive_storage"],
            "cpu_speed": rec["ndp/cpu_speed"], "oob_program": "", "ssh_port": 22,
            "ovs": False, "ovs_name": "switch1", "ovs_link": ""}
        item["role"] = "M" if rec["master"] else ("C" if rec["master_candidate"]
                                                  else "R")
        nodes.append(item)
    instances = []
    for rec in records[constants.QR_INSTANCE]:
        item = {f: _plain(rec.get(f)) for f in rlib2_instances.I_FIELDS}
        item["beparams"] = {"maxmem": rec["be/maxmem"], "minmem": rec["be/maxmem"],
                            "vcpus": rec["be/vcpus"],
                            "auto_balance": rec["be/auto_balance"],
                            "spindle_use": rec["be/spindle_use"],
                            "always_failover": False}
        instances.append(item)
    groups = []
    for rec in records[constants.QR_GROUP]:
        item = {f: _plain(rec.get(f)) for f in rlib2_nodes.G_FIELDS}
        item["uuid"] = rec["uuid"]
        groups.append(item)
    info = copy.deepcopy(records["info"])
    tags = info.pop("tags")
    return {"info": info, "tags": tags, "groups": groups, "nodes": nodes,
            "instances": instances}


class FakeRapi:
    """A RAPI client answering from ``rapi_answers``."""

    def __init__(self, answers: dict[str, Any], endpoint: Endpoint | None = None) -> None:
        self.answers = answers
        self.endpoint = endpoint
        self.calls: list[str] = []
        self.closed = False

    def _get(self, what: str, bulk: bool = True) -> Any:
        assert bulk, f"{what} asked without bulk"
        self.calls.append(what)
        return copy.deepcopy(self.answers[what])

    def GetInfo(self) -> Any:
        return self._get("info")

    def GetClusterTags(self) -> Any:
        return self._get("tags")

    def GetGroups(self, bulk: bool = False) -> Any:
        return self._get("groups", bulk)

    def GetNodes(self, bulk: bool = False) -> Any:
        return self._get("nodes", bulk)

    def GetInstances(self, bulk: bool = False) -> Any:
        return self._get("instances", bulk)

    def Close(self) -> None:
        self.closed = True


def _load(answers: dict[str, Any], spec: str = "cluster1.example.com"):
    made: list[FakeRapi] = []

    def factory(endpoint: Endpoint) -> FakeRapi:
        made.append(FakeRapi(answers, endpoint))
        return made[0]

    cluster = loader_rapi.load(spec, client_factory=factory, environ={})
    return cluster, made[0]


# --- the cluster --------------------------------------------------------------------

def test_same_model_as_luxi_and_iallocator():
    msg = sample_message()
    records = records_from_message(msg)
    cluster, client = _load(rapi_answers(records))
    assert client.calls == ["info", "tags", "groups", "nodes", "instances"]
    assert client.closed
    assert client.endpoint == Endpoint("cluster1.example.com", 5080)
    by_luxi = loader_luxi.load(client=FakeLuxi(records))
    # RAPI's group listing has no networks: they are the one difference
    for group in by_luxi.groups.values():
        group.networks = []
    assert_same_cluster(cluster, by_luxi, node_skip=())
    want, _ = loader_iallocator.load(msg)
    for group in want.groups.values():
        group.networks = []
    assert_same_cluster(cluster, want)
    assert cluster.nodes[MASTER].is_master
    assert cluster.tags == ["htools:iextags:service"]


def test_older_servers_name_the_memory_memory():
    answers = rapi_answers(records_from_message(sample_message()))
    for item in answers["instances"]:
        item["beparams"]["memory"] = item["beparams"].pop("maxmem")
    cluster, _ = _load(answers)
    assert cluster.instances["db1.example.com"].memory == 8192


def test_malformed_answers():
    answers = rapi_answers(records_from_message(sample_message()))
    answers["nodes"][0]["ndparams"] = "fast"
    with pytest.raises(InputError, match="node 'node1.example.com': 'ndparams'"
                       " must be a dict"):
        _load(answers)
    answers = rapi_answers(records_from_message(sample_message()))
    answers["instances"] = {"not": "a list"}
    with pytest.raises(InputError, match="invalid answer of /2/instances"):
        _load(answers)
    answers = rapi_answers(records_from_message(sample_message()))
    answers["nodes"][1]["mfree"] = "plenty"
    with pytest.raises(InputError, match="'mfree' must be a non-negative number"):
        _load(answers)


def test_api_errors_are_backend_errors():
    class Refusing(FakeRapi):
        def GetInfo(self) -> Any:
            raise rapi_client.GanetiApiError("401 Unauthorized: Authentication"
                                             " required", code=401)

    with pytest.raises(loader_rapi.BackendError) as err:
        loader_rapi.load("c1:8080", client_factory=lambda ep: Refusing({}), environ={})
    text = str(err.value)
    assert "https://c1:8080" in text and "RAPI_USER" in text


def test_unreachable_rapi_names_the_url():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(loader_rapi.BackendError) as err:
        loader_rapi.load(f"127.0.0.1:{port}", environ={})
    assert f"https://127.0.0.1:{port}" in str(err.value)


# --- the -m argument ----------------------------------------------------------------

@pytest.mark.parametrize("spec,want", [
    ("cluster1", Endpoint("cluster1", 5080)),
    ("cluster1.example.com:8080", Endpoint("cluster1.example.com", 8080)),
    ("https://cluster1", Endpoint("cluster1", 5080)),
    ("https://cluster1:1234/", Endpoint("cluster1", 1234)),
    ("HTTPS://cluster1:1234", Endpoint("cluster1", 1234)),
    ("192.0.2.1", Endpoint("192.0.2.1", 5080)),
    ("[2001:db8::1]:5081", Endpoint("2001:db8::1", 5081)),
    ("https://admin:s%40cret@cluster1", Endpoint("cluster1", 5080, "admin", "s@cret")),
])
def test_parse_endpoint(spec, want):
    assert parse_endpoint(spec, {}) == want


def test_endpoint_url():
    assert Endpoint("c1", 5080).url == "https://c1:5080"
    assert Endpoint("2001:db8::1", 5081).url == "https://[2001:db8::1]:5081"


def test_credentials_from_the_environment():
    env = {"RAPI_USER": "vcluster", "RAPI_PASSWORD": "pw"}
    assert parse_endpoint("c1", env) == Endpoint("c1", 5080, "vcluster", "pw")
    # the URL's win
    assert parse_endpoint("https://me:x@c1", env) == Endpoint("c1", 5080, "me", "x")
    with pytest.raises(InputError, match="a user name without a password"):
        parse_endpoint("c1", {"RAPI_USER": "vcluster"})


@pytest.mark.parametrize("spec,message", [
    ("", "empty"),
    ("http://cluster1", "only https:// URLs"),
    ("cluster1:http", "Invalid RAPI cluster 'cluster1:http'"),
    ("cluster1:99999", "Invalid RAPI cluster 'cluster1:99999'"),
    ("https://cluster1/2/info", "not a path"),
    ("https://", "no host name"),
])
def test_bad_endpoints(spec, message):
    with pytest.raises(InputError) as err:
        parse_endpoint(spec, {})
    assert message in str(err.value)
