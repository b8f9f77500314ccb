"""The node daemon fuzzer: RPC calls over TLS with the cluster's client
certificate, and junk.

Cases: the calls that change nothing on the node, with real-looking and
mutated arguments (strings are names and words; paths are virtual paths or
absolute paths inside the node's root, never elsewhere); the other calls
only in shapes refused before their handler runs (wrong argument count, a
body that is not a list, JSON junk, an argument of an encoded kind that
does not decode); unknown call names, other methods, malformed HTTP inside
TLS, a request without a client certificate, plain text and junk on the
TLS port; a health check now and then.

Oracles: no status that shows a server fault; a 200 answer is JSON
``[bool, payload]``; no refused shape reaches a handler (no 200); no
request is served without a client certificate; all within the bound.
Handlers that fail on odd arguments with an unexpected exception
("Error while executing backend function: ...") are counted, not failed:
that is how node RPC reports a handler's error.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from typing import Any

from ganeti import constants
from ganeti.rpc import defs as rpc_defs
from ganeti.rpc.encoding import ArgKind

from . import gen as fg
from .core import (INSTANCE, BadStatus, NODED_PORT, Hang, HttpsTarget, Run, ClientContext,
                   RawJunk, Short)


# --- noded -------------------------------------------------------------------------------

#: Calls that change nothing on the node; they get real-looking arguments
_READ_ONLY_CALLS = {
    "version", "master_node_name", "node_info", "node_has_ip_address", "bridges_exist",
    "test_delay", "get_file_info", "instance_info", "all_instances_info",
    "instance_list", "instance_console_info", "hypervisor_validate_params",
    "os_diagnose", "os_get", "os_validate", "storage_list", "blockdev_find",
    "blockdev_getmirrorstatus", "blockdev_getdimensions", "migration_info",
    "instance_get_migration_status", "node_verify", "node_verify_light",
}
#: Arguments of the other calls that, when undecodable, stop the call before
#: its handler runs
_DECODED_KINDS = (ArgKind.COMPRESS, ArgKind.FILE_DETAILS, ArgKind.VIRTUAL_PATH,
                  ArgKind.VIRTUAL_PATH_PAIRS)
_SAFE_NV_KEYS = [constants.NV_HOSTNAME, constants.NV_VERSION, constants.NV_TIME,
                 constants.NV_HYPERVISOR, constants.NV_INSTANCELIST, constants.NV_HVINFO,
                 constants.NV_OSLIST, constants.NV_CLIENT_CERT, "bogus-check"]


class NodedFuzzer:
    """The node daemon cases and their oracles (see the module doc)."""

    KINDS = ["read-only", "read-only-mutated", "refused-call", "unknown-call",
             "odd-method", "http-in-tls", "no-client-cert", "plain-http", "tls-junk",
             "health"]
    WEIGHTS = [40, 20, 15, 5, 3, 6, 3, 1, 1, 3]

    def __init__(self, run: Run) -> None:
        self.run = run
        self.rng = run.rng
        self.target = t = run.target
        self.ctx = ClientContext(t.noded_ca, t.noded_cert)
        self.nocert_ctx = ClientContext(t.noded_ca)
        self.servers = {node.name: HttpsTarget(node.ip, NODED_PORT, self.ctx)
                        for node in t.nodes}

    def Strings(self, node: Any) -> list[str]:
        """Harmless strings: names and words, never a path outside the
        cluster."""
        return [*self.target.node_names, INSTANCE, constants.HT_FAKE, "noop",
                "noop+default", "file", "lvm-vg", "diskless", "sharedfile", "",
                fg.Word(self.rng), "\u00e9\u65e5", "%s"]

    def Virtual(self, node: Any) -> str:
        rng = self.rng
        name = rng.choice([
            "/var/lib/ganeti/config.data", "/var/lib/ganeti/ssconf_master_node",
            "/var/lib/ganeti/queue/job-1", "/var/lib/ganeti/known_hosts",
            "/var/lib/ganeti/" + fg.Word(rng), "/var/lib/ganeti/../ganeti/hmac.key",
            "/var/lib/ganeti/queue/", "/var/lib/ganeti/queue/archive/0/job-1"])
        if rng.random() < 0.8:
            return "/###-VIRTUAL-PATH-###," + name
        return rng.choice([name.lstrip("/"), "relative/" + fg.Word(rng), ""])

    def Junk(self) -> Any:
        """A value that is no path and no object."""
        return self.rng.choice([None, True, 0, -1, 2**64, 1.5, [], {}, [None], {"x": [1]}])

    def ReadOnlyArgs(self, name: str, node: Any) -> list[Any]:
        """Arguments for a read-only call, real-looking or odd."""
        rng, t = self.rng, self.target
        word = rng.choice(self.Strings(node))
        fsdir = t.NameOfPath(node, constants.DEFAULT_FILE_STORAGE_DIR)
        hv = rng.choice([constants.HT_FAKE, constants.HT_FAKE, fg.Word(rng), None])
        hvparams = rng.choice([{}, {fg.Word(rng): fg.Scalar(rng)}, None, self.Junk()])
        disk = rng.choice([
            {"dev_type": constants.DT_DISKLESS, "size": 1},
            {"dev_type": rng.choice([constants.DT_FILE, "bogus"]),
             "logical_id": ["loop", fsdir + "/" + fg.Word(rng)], "size": 10},
            {fg.Word(rng): fg.Scalar(rng)}, self.Junk()])
        instance = rng.choice([
            {"name": rng.choice([INSTANCE, fg.Word(rng)]), "hypervisor": hv,
             "disks": [], "nics": []},
            {"name": word, fg.Word(rng): 1}, self.Junk()])
        by_call: dict[str, Callable[[], list[Any]]] = {
            "node_info": lambda: [
                rng.choice([[[constants.ST_FILE, fsdir, []]], [], [["bogus", word, []]],
                            self.Junk()]),
                rng.choice([[[constants.HT_FAKE, {}]], [[hv, hvparams]], self.Junk()])],
            "node_has_ip_address": lambda: [rng.choice(
                [n.ip for n in t.nodes] + ["192.0.2.1", "::1", "300.0.0.1", word])],
            "bridges_exist": lambda: [rng.choice([[fg.Word(rng)], [], [word], self.Junk()])],
            "test_delay": lambda: [rng.choice([0, 0.01, 0.1, -1, "1", None, [], float("nan")])],
            "get_file_info": lambda: [rng.choice([self.Virtual(node), self.Junk()])],
            "instance_info": lambda: [rng.choice([INSTANCE, word]), hv, hvparams],
            "all_instances_info": lambda: [rng.choice([[hv], [], self.Junk()]),
                                           rng.choice([{hv: hvparams}, self.Junk()])],
            "instance_list": lambda: [rng.choice([[hv], [], self.Junk()]),
                                      rng.choice([{hv: hvparams}, self.Junk()])],
            "instance_console_info": lambda: [rng.choice([
                {INSTANCE: {"instance": instance, "node": {}, "group": {},
                            "hvParams": {}, "beParams": {}}}, {}, self.Junk()])],
            "hypervisor_validate_params": lambda: [hv, hvparams],
            "os_get": lambda: [rng.choice(["noop", "noop+default", fg.Word(rng), None])],
            "os_validate": lambda: [
                rng.choice([True, False]), rng.choice(["noop+default", fg.Word(rng), None]),
                rng.choice([[], ["parameters"], [fg.Word(rng)], None]),
                rng.choice([{}, {fg.Word(rng): fg.Word(rng)}, None]),
                rng.choice([True, False])],
            "storage_list": lambda: [
                rng.choice([constants.ST_FILE, constants.ST_DISKLESS, "bogus", None]),
                rng.choice([[[fsdir]], [[fsdir, fsdir + "/" + fg.Word(rng)]], [fsdir], [],
                            self.Junk()]),
                rng.choice([None, fg.Word(rng)]),
                rng.choice([["name", "size", "free"], ["bogus"], [], self.Junk()])],
            "blockdev_find": lambda: [disk],
            "blockdev_getmirrorstatus": lambda: [rng.choice([[disk], [], self.Junk()])],
            "blockdev_getdimensions": lambda: [rng.choice([[disk], [], self.Junk()])],
            "migration_info": lambda: [instance],
            "instance_get_migration_status": lambda: [instance],
            "node_verify": lambda: self.VerifyArgs(),
            "node_verify_light": lambda: self.VerifyArgs(),
        }
        make = by_call.get(name)
        return make() if make is not None else []

    def VerifyArgs(self) -> list[Any]:
        rng, t = self.rng, self.target
        checks = {key: rng.choice([None, [constants.HT_FAKE], {}, fg.Scalar(rng)])
                  for key in rng.sample(_SAFE_NV_KEYS, rng.randint(0, 4))}
        return [rng.choice([checks, checks, self.Junk()]),
                rng.choice([t.cluster_name, None]),
                rng.choice([{constants.HT_FAKE: {}}, self.Junk()]),
                rng.choice([{}, self.Junk()]), rng.choice([{}, self.Junk()])]

    def RefusedBody(self, call: rpc_defs.RpcCall) -> tuple[str, bytes]:
        """A body for a call that changes the node, refused before its
        handler runs."""
        rng = self.rng
        count = len(call.args)
        decodable = [i for i, arg in enumerate(call.args) if arg.kind in _DECODED_KINDS]
        shapes = ["arity", "not-a-list", "junk"]
        if decodable:
            shapes.append("undecodable")
        shape = rng.choice(shapes)
        if shape == "arity":
            wrong = rng.choice([n for n in (0, count - 1, count + 1, count + 5)
                                if n >= 0 and n != count])
            return shape, json.dumps([fg.Value(rng, 1) for _ in range(wrong)]).encode()
        if shape == "not-a-list":
            return shape, json.dumps(rng.choice([{}, {"a": [1]}, "[]", 5, None, True])
                                     ).encode()
        if shape == "junk":
            return shape, fg.JsonJunk(rng)
        args = [fg.Value(rng, 1) for _ in range(count)]
        for index in decodable:
            args[index] = rng.choice(["relative/path", "", 42, None, ["zlib", "!!"],
                                      ["bogus", "x"], [["a"]], "/not/virtual"])
        return shape, json.dumps(args).encode()

    def Case(self, kind: str) -> None:
        rng, run = self.rng, self.run
        node = rng.choice(self.target.nodes)
        server = self.servers[node.name]
        if kind in ("http-in-tls", "plain-http", "tls-junk"):
            RawJunk(run, server, "/" + rng.choice(sorted(rpc_defs.CALLS)), kind,
                    ctx=self.ctx)
            return
        if kind == "no-client-cert":
            run.Describe(f"PUT /version without a client certificate to {node.name}")
            try:
                answers, how = server.Raw(b"PUT /version HTTP/1.1\r\nHost: x\r\n"
                                          b"Content-Length: 2\r\n\r\n[]", ctx=self.nocert_ctx)
            except Hang as err:
                run.Fail(f"hang: {err}")
                return
            run.tally[f"no client certificate: {how}"] += 1
            run.Check(all(a.status != 200 for a in answers),
                      f"served without a client certificate: {Short(answers, 300)}")
            return
        method = "PUT"
        call_name = rng.choice(sorted(rpc_defs.CALLS))
        call = rpc_defs.CALLS[call_name]
        if kind == "health":
            call_name, body = "version", b"[]"
        elif kind in ("read-only", "read-only-mutated"):
            call_name = rng.choice(sorted(_READ_ONLY_CALLS))
            args = self.ReadOnlyArgs(call_name, node)
            if kind == "read-only-mutated":
                change = rng.randrange(3)
                if change == 0 and args:
                    args[rng.randrange(len(args))] = fg.Value(rng, 3, self.Strings(node))
                elif change == 1:
                    args.append(self.Junk())
                elif args:
                    args.pop()
                args = self.Scrub(args)
                if call_name == "test_delay" and args and isinstance(args[0], (int, float)) \
                        and args[0] > 1:
                    args[0] = 1  # a long delay is a legitimate slow call
            body = fg.Dumps(rng, args).encode("utf-8", "surrogatepass")
        elif kind == "refused-call":
            call_name = rng.choice(sorted(set(rpc_defs.CALLS) - _READ_ONLY_CALLS))
            call = rpc_defs.CALLS[call_name]
            shape, body = self.RefusedBody(call)
            run.tally[f"refused shape {shape}"] += 1
        elif kind == "unknown-call":
            call_name = rng.choice([
                fg.Word(rng), call_name.upper(), call_name + "_x", "", "version/",
                "../version", "%2e%2e/version", "version?x=1", call_name + "%00",
                "RunCall", "__init__", "x" * 3000, "ganeti.backend.node.GetVersion"])
            body = b"[]"
        else:  # odd-method
            method = rng.choice(["GET", "POST", "DELETE", "HEAD", "OPTIONS", "FOO"])
            call_name = "version"
            body = b"[]"
        target = "/" + call_name
        headers = {"Content-Type": "application/json"}
        if method != "PUT":
            headers["Connection"] = "close"
        run.Describe(f"{method} {target[:300]} on {node.name}: {body[:1000]!r}")
        try:
            answer = server.Request(method, target, headers, body)
        except Hang as err:
            run.Fail(f"hang: {err}")
            return
        except (http.client.HTTPException, OSError) as err:
            run.Fail(f"connection failed: {type(err).__name__}: {err}")
            return
        run.tally[f"status {answer.status}"] += 1
        if not run.Check(not BadStatus(answer.status),
                         f"status {answer.status}: {answer.body[:1000]!r}"):
            return
        if kind == "refused-call":
            run.Check(answer.status != 200, f"call '{call_name}' ran its handler"
                                            f" with a refused shape: {answer.body[:300]!r}")
        if kind == "health":
            run.Check(answer.status == 200, f"health check failed: {answer.status}")
        if answer.status != 200:
            return
        try:
            data = json.loads(answer.body)
        except ValueError:
            run.Fail(f"200 answer that is not JSON: {answer.body[:300]!r}")
            return
        if run.Check(isinstance(data, list) and len(data) == 2
                     and isinstance(data[0], bool),
                     f"answer is not [success, payload]: {Short(data, 300)}"):
            run.tally[f"{call_name} {'ok' if data[0] else 'failed'}"] += 1
            if not data[0] and isinstance(data[1], str) and \
                    data[1].startswith("Error while executing backend function"):
                run.tally["handler raised an unexpected exception (reported as"
                          " failure)"] += 1

    def Scrub(self, value: Any) -> Any:
        """Random values with every string replaced by a harmless one."""
        if isinstance(value, str):
            return value if value in self.Strings(None) else fg.Word(self.rng)
        if isinstance(value, list):
            return [self.Scrub(v) for v in value]
        if isinstance(value, dict):
            return {k: self.Scrub(v) for k, v in value.items()}
        return value

    def Go(self) -> None:
        try:
            for kind in self.run.Cases(self.KINDS, self.WEIGHTS):
                self.Case(kind)
        finally:
            for server in self.servers.values():
                server.Close()
