"""The RPC client: runner, resolvers, results, transport errors."""

from __future__ import annotations

import socket
import time

import pycurl
import pytest

from ganeti import constants, errors, objects, serializer
from ganeti.rpc import client
from ganeti.rpc.client import RpcRequest, RpcResult, RpcSslConfig
from ganeti.rpc.encoding import PerNode
from ganeti.rpc.node import (ConfigResolver, NodeEndpoint, RpcRunner,
                             SsconfResolver, StaticResolver)


class FakeTransport:
    """Answers every request with a canned reply and records it."""

    def __init__(self, answer=(True, "ok")):
        self.requests: list[RpcRequest] = []
        self.answer = answer

    def __call__(self, requests, ssl_config, connect_timeout):
        for req in requests:
            self.requests.append(req)
            req.code = 200
            req.resp_body = serializer.DumpJsonBytes(list(self.answer))


@pytest.fixture
def ssl_config(tmp_path):
    path = tmp_path / "cert.pem"
    path.write_text("x")
    return RpcSslConfig(str(path), str(path))


def _Runner(ssl_config, endpoints, offline=(), answer=(True, "ok")):
    transport = FakeTransport(answer)
    runner = RpcRunner(StaticResolver(endpoints, offline=offline),
                       ssl_config=ssl_config, _process_fn=transport)
    return runner, transport


def test_multi_call_builds_one_request_per_node(ssl_config):
    runner, transport = _Runner(ssl_config, {"a": ("127.0.0.1", 1000),
                                             "b": ("127.0.0.2", 1001)})
    results = runner.call_test_delay(["b", "a", "b"], 1.5)
    assert list(results) == ["b", "a"]
    assert all(r.payload == "ok" for r in results.values())
    assert [(r.address, r.port, r.procedure) for r in transport.requests] == [
        ("127.0.0.2", 1001, "test_delay"), ("127.0.0.1", 1000, "test_delay")]
    assert transport.requests[0].body == b"[1.5]\n"
    assert transport.requests[0].read_timeout == 6.5
    assert transport.requests[0].url == "https://127.0.0.2:1001/test_delay"


def test_single_call_returns_one_result(ssl_config):
    runner, transport = _Runner(ssl_config, {"a": "127.0.0.1"})
    result = runner.call_jobqueue_purge("a")
    assert isinstance(result, RpcResult) and result.payload == "ok"
    assert transport.requests[0].port == constants.DEFAULT_NODED_PORT


def test_per_node_values_and_timeouts(ssl_config):
    runner, transport = _Runner(ssl_config, {"a": "10.0.0.1", "b": "10.0.0.2"})
    runner.call_test_delay(["a", "b"], PerNode({"a": 1, "b": 20}))
    assert [(r.body, r.read_timeout) for r in transport.requests] == [
        (b"[1]\n", 6.0), (b"[20]\n", 25.0)]


def test_timeout_override(ssl_config):
    runner, transport = _Runner(ssl_config, {"a": "10.0.0.1"})
    runner.call_version(["a"], read_timeout=0.5)
    assert transport.requests[0].read_timeout == 0.5
    runner.call_version(["a"])
    assert transport.requests[1].read_timeout == constants.RPC_TMO_URGENT


def test_offline_nodes_are_never_contacted(ssl_config):
    runner, transport = _Runner(ssl_config, {"a": "10.0.0.1", "b": "10.0.0.2"},
                                offline=["b"])
    results = runner.call_node_info(["a", "b"], [], [])
    assert [r.key for r in transport.requests] == ["a"]
    assert results["b"].offline and results["b"].fail_msg == "Node is marked offline"
    assert results["b"].payload is None
    # ... unless the call accepts offline nodes
    results = runner.call_version(["b"])
    assert results["b"].fail_msg is None


def test_wrong_argument_count(ssl_config):
    runner, _ = _Runner(ssl_config, {})
    with pytest.raises(errors.ProgrammerError, match=r"takes 1 argument\(s\) \(duration\)"):
        runner.call_test_delay(["a"])
    with pytest.raises(errors.ProgrammerError, match="list of nodes"):
        runner.call_version("a")
    with pytest.raises(errors.ProgrammerError, match="Unknown RPC call"):
        runner.Call("nope", ["a"], [])


def test_shared_values_are_encoded_once(ssl_config, tmp_path, monkeypatch):
    path = tmp_path / "upload"
    path.write_text("data")
    calls = []
    real = client  # noqa: F841 - keep the import used
    from ganeti.rpc import encoding
    orig = encoding.PrepareFileUpload
    monkeypatch.setattr(encoding, "PrepareFileUpload",
                        lambda name: calls.append(name) or orig(name))
    runner, transport = _Runner(ssl_config, {"a": "10.0.0.1", "b": "10.0.0.2"})
    runner.call_upload_file(["a", "b"], str(path))
    assert calls == [str(path)]
    assert transport.requests[0].body == transport.requests[1].body


def test_postproc_is_applied(ssl_config, monkeypatch):
    from ganeti.rpc import defs
    call = defs.CALLS["version"]
    monkeypatch.setitem(defs.CALLS, "version", defs.RpcCall(
        call.name, call.timeout, call.args, call.handler, call.doc,
        accept_offline=True, postproc=lambda res: ("post", res.payload)))
    runner, _ = _Runner(ssl_config, {"a": "10.0.0.1"})
    assert runner.Call("version", ["a"], []) == {"a": ("post", "ok")}


def test_failed_answer(ssl_config):
    runner, _ = _Runner(ssl_config, {"a": "10.0.0.1"}, answer=(False, "it broke"))
    result = runner.call_version(["a"])["a"]
    assert result.fail_msg == "it broke" and result.payload is None
    with pytest.raises(errors.OpExecError, match="Doing X: it broke"):
        result.Raise("Doing X")
    with pytest.raises(errors.OpPrereqError) as exc:
        result.Raise(None, prereq=True, ecode=errors.ECODE_ENVIRON)
    assert exc.value.args == ("Call 'version' to node 'a' has failed: it broke",
                              errors.ECODE_ENVIRON)
    messages = []
    result.Warn("Warning", messages.append)
    assert messages == ["Warning: it broke"]


@pytest.mark.parametrize("data,msg", [
    ("nonsense", "invalid result type"),
    ([True], "invalid result length (1)"),
    ([False, None], "No error information"),
])
def test_malformed_answers(data, msg):
    assert msg in RpcResult(data=data, call="c", node="n").fail_msg


def test_success_result():
    result = RpcResult(data=[True, {"x": 1}], call="c", node="n")
    assert not result.failed and result.payload == {"x": 1}
    result.Raise("never")
    assert "fail_msg=None" in repr(result)


def _Req(**kwargs) -> RpcRequest:
    values = dict(key="k", node="n", address="127.0.0.1", port=1, procedure="version",
                  body=b"[]", read_timeout=3)
    values.update(kwargs)
    return RpcRequest(**values)


def test_request_to_result():
    res = client.RequestToResult(_Req(error="boom"), serializer.LoadJson)
    assert res.fail_msg == "boom" and res.node == "n" and res.call == "version"
    res = client.RequestToResult(_Req(code=404, resp_body=b"404 Not Found: x\n"),
                                 serializer.LoadJson)
    assert res.fail_msg == "HTTP error 404 from node daemon: 404 Not Found: x"
    res = client.RequestToResult(_Req(code=200, resp_body=b"{bad"), serializer.LoadJson)
    assert res.fail_msg.startswith("Invalid answer from node daemon")
    assert _Req(address="::1", port=5).url == "https://[::1]:5/version"


@pytest.mark.parametrize("code,text", [
    (pycurl.E_COULDNT_CONNECT, "Connection to node daemon at 127.0.0.1:1 failed"),
    (pycurl.E_OPERATION_TIMEDOUT, "Timeout: no answer from node daemon at 127.0.0.1:1"
                                  " within 3 seconds"),
    (pycurl.E_SSL_CONNECT_ERROR, "TLS error"),
    (pycurl.E_GOT_NOTHING, "closed without a complete answer"),
    (pycurl.E_URL_MALFORMAT, "Error 3"),
])
def test_curl_error_messages(code, text):
    assert text in client.FormatCurlError(_Req(), code, "detail")


def test_missing_certificate_files(tmp_path):
    config = RpcSslConfig(str(tmp_path / "ca.pem"), str(tmp_path / "cert.pem"))
    req = _Req()
    client.ProcessRequests([req], config)
    assert "CA certificate file" in req.error and "missing" in req.error


def test_connection_refused_and_timeout(tmp_path, cluster_crypto):
    # A port nobody listens on, and a listener that never answers
    with socket.socket() as probe:
        probe.bind(("127.0.96.1", 0))
        refused_port = probe.getsockname()[1]
    with socket.socket() as silent:
        silent.bind(("127.0.96.2", 0))
        silent.listen(5)
        refused = _Req(address="127.0.96.1", port=refused_port)
        hung = _Req(address="127.0.96.2", port=silent.getsockname()[1], read_timeout=0.5)
        start = time.monotonic()
        client.ProcessRequests([refused, hung], cluster_crypto.ssl_config)
        assert time.monotonic() - start < 3
    assert "Connection to node daemon" in refused.error
    assert "Timeout" in hung.error
    client.ProcessRequests([], cluster_crypto.ssl_config)  # nothing to do


def test_ssl_config_defaults(tmp_path):
    from ganeti import pathutils
    root = tmp_path / "node1.example.com"
    (root / "var/lib/ganeti").mkdir(parents=True)
    pathutils._SetRoot(str(root))
    try:
        config = RpcSslConfig.FromDefaults()
        assert config.cert_file == config.ca_file == pathutils.NODED_CERT_FILE
        (root / "var/lib/ganeti/client.pem").write_text("x")
        assert RpcSslConfig.FromDefaults().cert_file == pathutils.NODED_CLIENT_CERT_FILE
    finally:
        pathutils.Reload()


def _Node(name, ip, offline=False, **extra):
    return objects.Node(name=name, primary_ip=ip, offline=offline, uuid=name, **extra)


class _Cfg:
    def __init__(self, nodes):
        self.nodes = nodes

    def GetNodeInfo(self, uuid):
        return self.nodes.get(uuid)

    def GetAllNodesInfo(self):
        return dict(self.nodes)


def test_config_resolver():
    cfg = _Cfg({"u1": _Node("node1", "192.0.2.1"),
                "u2": _Node("node2", "192.0.2.2", offline=True),
                "u3": _Node("node3", "192.0.2.3", noded_address="127.0.1.3",
                            noded_port=1900)})
    resolver = ConfigResolver(cfg)
    assert resolver(["u1", "u2", "u3", "other.example.com"], False) == [
        NodeEndpoint("node1", "192.0.2.1", constants.DEFAULT_NODED_PORT),
        NodeEndpoint("node2", "192.0.2.2", constants.DEFAULT_NODED_PORT, offline=True),
        NodeEndpoint("node3", "127.0.1.3", 1900),
        NodeEndpoint("other.example.com", "other.example.com"),
    ]
    assert resolver(["u2"], True) == [NodeEndpoint("node2", "192.0.2.2")]
    assert RpcRunner.FromConfig(cfg)._resolver(["u3"], False)[0].port == 1900


def test_ssconf_resolver(tmp_path):
    from ganeti import ssconf
    ss = ssconf.SimpleStore(str(tmp_path))
    ss.WriteFiles({
        constants.SS_NODE_PRIMARY_IPS: "node1 192.0.2.1\nnode2 192.0.2.2",
        constants.SS_OFFLINE_NODES: "node2",
        constants.SS_NODE_NODED_ENDPOINTS: "node3 127.0.1.3:1900",
    })
    resolver = SsconfResolver(ss)
    assert resolver(["node1", "node2", "node3"], False) == [
        NodeEndpoint("node1", "192.0.2.1"),
        NodeEndpoint("node2", "192.0.2.2", offline=True),
        NodeEndpoint("node3", "127.0.1.3", 1900),
    ]
    # Without ssconf files names are used as they are
    empty = SsconfResolver(ssconf.SimpleStore(str(tmp_path / "none")))
    assert empty(["n"], False) == [NodeEndpoint("n", "n")]


def test_static_resolver_forms():
    resolver = StaticResolver({"a": ("127.0.0.1", 5), "b": "127.0.0.2",
                               "c": NodeEndpoint("c", "127.0.0.3", 7, offline=True)})
    assert resolver(["a", "b", "c", "d"], False) == [
        NodeEndpoint("a", "127.0.0.1", 5), NodeEndpoint("b", "127.0.0.2"),
        NodeEndpoint("c", "127.0.0.3", 7, offline=True), NodeEndpoint("d", "d")]
    assert not resolver(["c"], True)[0].offline
