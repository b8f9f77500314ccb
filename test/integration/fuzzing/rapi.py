"""The RAPI fuzzer: every resource, method, query, body and credential.

Cases: the resources of the table in turn (reads, and writes of the
resources that take them), with real, random and hostile names in the
path; random or odd methods; query strings; bodies of random JSON (keys
from the resource's opcode), JSON junk or bytes, with odd Content-Types;
the write user, the read-only user, anonymous, and bad or malformed
Authorization headers; odd extra headers; odd paths; malformed HTTP inside
TLS, plain text on the TLS port, TLS junk; a health check now and then.
Every write carries ``dry-run=1`` first in its query (asserted before
sending); reinstall, which ignores it, gets only names that do not exist
from the write user.

Oracles: no status that shows a server fault (500 and up, but 501 and
505); JSON bodies, with the status as ``code`` in error bodies; no write
accepted without write credentials; all within the bound.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any

from ganeti import constants
from ganeti.rapi import resources as rapi_resources

from . import gen as fg
from .core import (INSTANCE, BadStatus, REQUEST_BOUND, WAIT_BOUND, Hang, HttpsTarget, Run,
                   ClientContext, MakeDryRun, ParamValue, RawJunk, Short)


# --- RAPI --------------------------------------------------------------------------------

_RAPI_QUERY_KEYS = ["bulk", "dry-run", "force", "lock", "fields", "reason", "static",
                    "no_remember", "filter", "auto-promote", "iallocator", "remote_node",
                    "mode", "os", "nostartup", "type", "ignore_secondaries", "name",
                    "tag", "disks", "dry_run"]
_RAPI_METHODS = ["GET", "PUT", "POST", "DELETE"]
_ODD_METHODS = ["HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT", "FOO", "get", "Put"]
#: The resources that take writes
_WRITABLE = [(pattern, handler) for pattern, handler in rapi_resources.RESOURCES
             if set(handler.AllowedMethods()) - {"GET"}]


def _IsDryRun(target: str) -> bool:
    """Whether the server will see ``dry-run=1`` first in ``target``'s query."""
    query = target.partition("?")[2].split("#", 1)[0]
    values = urllib.parse.parse_qs(query, keep_blank_values=True, errors="replace")
    return values.get("dry-run", [""])[0] == "1"


class RapiFuzzer:
    """The RAPI cases and their oracles (see the module doc)."""

    KINDS = ["resource", "resource-write", "odd-path", "odd-method", "http-in-tls",
             "plain-http", "tls-junk", "health"]
    WEIGHTS = [45, 30, 8, 3, 6, 1, 1, 3]

    def __init__(self, run: Run) -> None:
        self.run = run
        self.rng = run.rng
        self.target = t = run.target
        #: resources left in this round, for reads and for writes
        self.queues: dict[bool, list[tuple[str, type]]] = {False: [], True: []}
        self.server = HttpsTarget(t.rapi_host, t.rapi_port, ClientContext(t.rapi_ca))

    def NextResource(self, write: bool) -> tuple[str, type]:
        """The resources in turn (each round in a new random order), so
        that every one is used once the run is long enough."""
        queue = self.queues[write]
        if not queue:
            if self.run.index:
                self.run.tally[f"round of all {'writable ' if write else ''}resources"] += 1
            queue.extend(_WRITABLE if write else rapi_resources.RESOURCES)
            self.rng.shuffle(queue)
        return queue.pop()

    def Segment(self, param: str) -> str:
        """A value (URL-encoded) for a ``[param]`` path segment."""
        rng, t = self.rng, self.target
        real = {
            "instance_name": [INSTANCE],
            "node_name": t.node_names,
            "group_name": ["default"],
            "network_name": ["fznet"],
            "job_id": [str(j) for j in t.job_ids[-10:]] or ["1"],
            "disk_index": ["0", "1"],
            "resource": sorted(constants.QR_VIA_RAPI),
        }.get(param, [fg.Word(rng)])
        roll = rng.random()
        if roll < 0.55:
            value = rng.choice(real)
        elif roll < 0.75:
            value = fg.Word(rng)
        else:
            value = rng.choice(fg.ODD_STRINGS + [
                "-1", "9" * 5000, "0x10", "1e3", " 1", "1.5", "a/b", "%zz", "%ff",
                "x" * 5000])
        if rng.random() < 0.1:
            # Hardly encoded: the server sees '/' and '%' as they are ('?' and
            # '#' stay encoded: they would cut the path short, and a write
            # might lose its dry-run=1)
            return urllib.parse.quote(value, safe="/%=&", errors="surrogatepass")
        return urllib.parse.quote(value, safe="", errors="surrogatepass")

    def Path(self, pattern: str) -> str:
        parts = []
        for part in pattern.strip("/").split("/"):
            if part.startswith("[") and part.endswith("]"):
                parts.append(self.Segment(part[1:-1]))
            elif part:
                parts.append(part)
        return "/" + "/".join(parts)

    def Query(self, dry_run: bool) -> str:
        """A query string (without '?'); ``dry-run=1`` first if asked."""
        rng = self.rng
        pairs = []
        for _ in range(rng.choice([0, 0, 1, 2, 4])):
            key = rng.choice(_RAPI_QUERY_KEYS) if rng.random() < 0.8 else fg.Key(rng)
            value = rng.choice(["0", "1", "-1", "", "yes", fg.Word(rng),
                                rng.choice(fg.ODD_STRINGS), "9" * 5000,
                                ",".join(rng.sample(self.target.fields.get("node", ["name"]),
                                                    2))])
            pairs.append((key, value))
        if dry_run:
            pairs = [("dry-run", "1")] + [(k, v) for k, v in pairs if k != "dry-run"]
        text = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote,
                                      errors="surrogatepass")
        if rng.random() < 0.05:
            text += rng.choice(["&%zz=1", "&a=%ff%fe", "&&&", "&=", "#frag", "&a=b=c"])
        return text

    def Body(self, handler: type, method: str) -> tuple[bytes | None, str | None]:
        """A request body and its Content-Type."""
        rng, t = self.rng, self.target
        roll = rng.random()
        ctype: str | None = "application/json"
        if roll < 0.25:
            body = None
        elif roll < 0.75:
            opcls = getattr(handler, f"{method}_OPCODE", None)
            slots = opcls.GetAllSlots() if opcls is not None else []
            value: Any = {}
            for _ in range(rng.randint(0, 6)):
                name = rng.choice(slots) if slots and rng.random() < 0.8 else fg.Key(rng)
                value[name] = ParamValue(rng, t, name)
            if rng.random() < 0.2:
                value = fg.Value(rng, 3, t.Pool())
            value = MakeDryRun(value) if rng.random() < 0.5 else value
            body = fg.Dumps(rng, value).encode("utf-8", "surrogatepass")
        elif roll < 0.9:
            body = fg.JsonJunk(rng)
        else:
            body = fg.RandomBytes(rng, rng.randint(1, 500))
        if rng.random() < 0.15:
            ctype = rng.choice([None, "text/plain", "application/json; charset=utf-8",
                                "APPLICATION/JSON", "multipart/form-data; boundary=x",
                                fg.Word(rng)])
        return body, ctype

    def Auth(self, write: bool) -> tuple[str, str | None]:
        """(who, Authorization header) - ``admin`` only when ``write``."""
        rng, t = self.rng, self.target
        who = rng.choice(["admin", "admin", "reader", "anonymous", "bad"] if write
                         else ["reader", "anonymous", "bad", "bad"])
        if who == "admin":
            return who, fg.BasicAuth(*t.admin)
        if who == "reader":
            return who, fg.BasicAuth(*t.reader)
        if who == "anonymous":
            return who, None
        return who, fg.BadAuth(rng, rng.choice([t.admin[0], t.reader[0]]))

    def Case(self, kind: str) -> None:
        rng = self.rng
        if kind == "health":
            self.Send("GET", "/2/info", "admin", fg.BasicAuth(*self.target.admin), None,
                      None, expect_ok=True)
            return
        if kind in ("http-in-tls", "plain-http", "tls-junk"):
            RawJunk(self.run, self.server,
                    self.Path(rng.choice(rapi_resources.RESOURCES)[0]), kind)
            return
        write = kind == "resource-write"
        pattern, handler = self.NextResource(write)
        path = self.Path(pattern)
        if kind == "odd-path":
            path = rng.choice([
                path + "/", path + "//", "/" + path.upper().lstrip("/"), path + "/extra",
                "/2/../2/info", "/2/%2e%2e/info", "/2/nodes/%2F", "//2/info",
                "/2/info/" + "x" * 7000, "/2/nodes/" + fg.Word(rng) + "/../../info",
                path.replace("/", "/./", 1), "/3/info", "/2/query/" + "%00",
                path + "?" + "a=1&" * 2000])
        allowed = handler.AllowedMethods()
        if write:
            method = rng.choice([m for m in allowed if m != "GET"])
        elif kind == "odd-method":
            method = rng.choice(_ODD_METHODS)
        elif "GET" in allowed and rng.random() < 0.8:
            method = "GET"
        else:
            method = rng.choice(_RAPI_METHODS)
        writing = method != "GET"
        who, auth = self.Auth(writing)
        if writing and who == "admin" and pattern.endswith("/reinstall"):
            # Reinstall ignores dry-run: only instances that do not exist
            path = self.Path(pattern.replace("[instance_name]", fg.Word(rng) + ".invalid"))
        query = self.Query(dry_run=writing)
        if query or rng.random() < 0.05:
            query = ("&" if "?" in path else "?") + query
        body, ctype = self.Body(handler, method)
        headers = {}
        if rng.random() < 0.1:
            headers[rng.choice(["X-Junk", "Accept", "Accept-Encoding", "User-Agent",
                                "Cookie", "X-Forwarded-For", "Expect"])] = \
                rng.choice(["*/*", "gzip", "\u00e9".encode().decode("latin-1"),
                            "a" * 4000, fg.Word(rng), "100-continue"])
        bound = WAIT_BOUND if pattern.endswith("/wait") else REQUEST_BOUND
        self.Send(method, path + query, who, auth, body, ctype, headers=headers,
                  bound=bound, fresh=method in _ODD_METHODS or rng.random() < 0.1)

    def Send(self, method: str, target: str, who: str, auth: str | None,
             body: bytes | None, ctype: str | None, headers: dict[str, str] | None = None,
             bound: float = REQUEST_BOUND, fresh: bool = False,
             expect_ok: bool = False) -> None:
        run = self.run
        hdrs = dict(headers or {})
        if auth is not None:
            hdrs["Authorization"] = auth
        if ctype is not None:
            hdrs["Content-Type"] = ctype
        if method in _ODD_METHODS:
            hdrs["Connection"] = "close"
        assert who != "admin" or method.upper() == "GET" or _IsDryRun(target), \
            f"a write without dry-run=1: {method} {target}"
        run.Describe(f"{method} {target} as {who} ({auth!r}), headers {hdrs!r},"
                     f" body {body[:800] if body else body!r}")
        try:
            answer = self.server.Request(method, target, hdrs, body, bound=bound,
                                         fresh=fresh)
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
        if expect_ok:
            run.Check(answer.status == 200, f"health check failed: {answer.status}"
                                            f" {answer.body[:300]!r}")
        # The server takes methods case-insensitively ("get" is GET)
        if method.upper() != "GET" and who != "admin":
            run.Check(answer.status != 200, f"a write as {who} was accepted:"
                                            f" {answer.body[:300]!r}")
        if method == "HEAD":
            return
        try:
            data = json.loads(answer.body) if answer.body else None
        except ValueError:
            run.Fail(f"status {answer.status} with a body that is not JSON:"
                     f" {answer.body[:300]!r}")
            return
        if answer.status >= 400:
            run.Check(isinstance(data, dict) and data.get("code") == answer.status,
                      f"error answer without its code: {Short(data, 300)}")
        elif method != "GET" and isinstance(data, int) and not isinstance(data, bool):
            self.target.job_ids.append(data)
            run.tally["jobs submitted"] += 1

    def Go(self) -> None:
        try:
            for kind in self.run.Cases(self.KINDS, self.WEIGHTS):
                self.Case(kind)
        finally:
            self.server.Close()
