"""The confd fuzzer: batches of signed, unsigned and broken datagrams.

Cases: signed requests of every type with random queries (and odd types,
odd protocol versions, an upper-case HMAC, replays), and datagrams that
must be dropped: no valid ``rsalt``, bad HMACs, stale, future and
non-numeric salts, no signature, no magic, junk, oversized, a signed
message that is not JSON or not an object. Every batch goes to every
candidate and ends with a ping.

Oracles: once the ping's replies are back, every request due an answer has
exactly its replies (one per candidate), signed with the key for its
``rsalt``, with a known status and no internal error; nothing else was
answered (but junk made by mutating a signed request, which an edit may
leave valid, at most once per candidate); all within the bound.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import socket
import time
from dataclasses import dataclass
from typing import Any

from ganeti import constants, errors
from ganeti.confd import protocol as confd_protocol

from . import gen as fg
from .core import INSTANCE, MAX_FAILURES, REQUEST_BOUND, SEED, Run, Short


# --- confd -------------------------------------------------------------------------------


@dataclass
class Datagram:
    """One confd datagram and what must happen to it."""
    what: str
    payload: bytes
    #: the rsalt its replies carry, None if it must be dropped
    rsalt: str | None
    #: the rsalt of a reply that may come, at most once per peer (a
    #: mutated signed request can still be valid: a flipped case bit in
    #: the HMAC's hex digits, an edit of the envelope's white space)
    maybe_rsalt: str | None = None


class ConfdFuzzer:
    """Batches of datagrams to every confd; see the module doc.

    Each batch ends with a ping whose replies show that every datagram
    before it was handled: by then every reply due must have come, and
    none may have come for a datagram that must be dropped.
    """

    KINDS = ["valid", "odd-type", "odd-protocol", "uppercase-hmac", "replay", "no-rsalt",
             "bad-hmac", "stale", "future", "odd-salt", "unsigned", "no-magic", "junk",
             "oversized", "msg-not-json", "msg-not-object"]
    WEIGHTS = [30, 6, 4, 2, 3, 4, 5, 3, 3, 4, 3, 3, 6, 1, 3, 3]
    BATCH = 8

    def __init__(self, run: Run) -> None:
        self.run = run
        self.rng = run.rng
        self.target = run.target
        self.key = run.target.hmac_key
        self.sent_valid: list[Datagram] = []
        self.counter = 0

    def RSalt(self) -> str:
        self.counter += 1
        return f"fz-{SEED}-{self.counter}-{fg.Word(self.rng, 6)}"

    def Query(self, rtype: Any) -> Any:
        rng, t = self.rng, self.target
        ips = [n.ip for n in t.nodes] + ["192.0.2.1", "::1", "300.1.1.1"]
        by_type = {
            constants.CONFD_REQ_NODE_ROLE_BYNAME: t.node_names,
            constants.CONFD_REQ_NODE_PIP_BY_INSTANCE_IP: [
                {constants.CONFD_REQQ_IP: rng.choice(ips)},
                {constants.CONFD_REQQ_IPLIST: rng.sample(ips, 2),
                 constants.CONFD_REQQ_LINK: fg.Word(rng)}],
            constants.CONFD_REQ_CLUSTER_MASTER: [
                None, {constants.CONFD_REQQ_FIELDS: [str(i) for i in range(rng.randint(0, 5))]}],
            constants.CONFD_REQ_INSTANCES_IPS_LIST: [None, fg.Word(rng)],
            constants.CONFD_REQ_NODE_DRBD: t.node_names,
            constants.CONFD_REQ_NODE_INSTANCES: t.node_names,
            constants.CONFD_REQ_INSTANCE_DISKS: [INSTANCE],
            constants.CONFD_REQ_CONFIG_QUERY: [
                "/cluster/cluster_name", "/cluster", "/nodes", "/instances", "/", "",
                "/cluster/" + fg.Word(rng), "/../../etc", "/nodes/" + fg.Word(rng),
                "/cluster/cluster_name/x/y", "cluster"],
        }
        roll = rng.random()
        if roll < 0.6 and rtype in by_type:
            return rng.choice(by_type[rtype])
        if roll < 0.9:
            return fg.Value(rng, 3, t.Pool() + [constants.CONFD_REQQ_IP,
                                                 constants.CONFD_REQQ_FIELDS])
        return {rng.choice([constants.CONFD_REQQ_IP, constants.CONFD_REQQ_IPLIST,
                            constants.CONFD_REQQ_LINK, constants.CONFD_REQQ_FIELDS]):
                fg.Value(rng, 2, ips)}

    def Sign(self, request: Any, salt: str | None = None, key: bytes | None = None
             ) -> bytes:
        msg = json.dumps(request, sort_keys=True, separators=(",", ":"),
                         allow_nan=True) + "\n"
        salt = str(int(time.time())) if salt is None else salt
        digest = hmac.new(key or self.key, (salt + msg).encode("utf-8", "surrogatepass"),
                          hashlib.sha1).hexdigest()
        return self.Envelope(msg, salt, digest)

    @staticmethod
    def Envelope(msg: Any, salt: Any, digest: Any) -> bytes:
        return constants.CONFD_MAGIC_FOURCC + json.dumps(
            {"hmac": digest, "msg": msg, "salt": salt}).encode()

    def Request(self, rtype: Any = None, **overrides: Any) -> dict[str, Any]:
        rng = self.rng
        if rtype is None:
            rtype = rng.choice(sorted(set(_RequestTypes())))
        request = {"protocol": constants.CONFD_PROTOCOL_VERSION, "type": rtype,
                   "rsalt": self.RSalt()}
        query = self.Query(rtype)
        if query is not None or rng.random() < 0.2:
            request["query"] = query
        request.update(overrides)
        return request

    def Make(self, kind: str) -> Datagram:
        rng = self.rng
        now = int(time.time())
        if kind in ("valid", "odd-type", "odd-protocol", "uppercase-hmac"):
            overrides: dict[str, Any] = {}
            if kind == "odd-type":
                overrides["type"] = rng.choice([-1, 12, 99, 2**64, "0", None, True,
                                                1.0, [0], {"t": 0}])
            elif kind == "odd-protocol":
                overrides["protocol"] = rng.choice([0, 2, -1, "1", None, 1.0, True])
            request = self.Request(**overrides)
            payload = self.Sign(request)
            if kind == "uppercase-hmac":
                outer = json.loads(payload[4:])
                outer["hmac"] = outer["hmac"].upper()
                payload = self.Envelope(outer["msg"], outer["salt"], outer["hmac"])
            gram = Datagram(f"{kind} {Short(request, 600)}", payload, request["rsalt"])
            if len(payload) > constants.MAX_UDP_DATA_SIZE:
                gram.rsalt = None
            if gram.rsalt is not None:
                self.sent_valid.append(gram)
            return gram
        if kind == "replay" and self.sent_valid:
            old = rng.choice(self.sent_valid[-20:])
            return Datagram(f"replay of {old.what}", old.payload, old.rsalt)
        if kind in ("no-rsalt", "replay"):
            request = self.Request()
            bad_rsalt = rng.choice(["", None, 0, ["x"], {"a": 1}, False])
            if rng.random() < 0.3:
                del request["rsalt"]
            else:
                request["rsalt"] = bad_rsalt
            return Datagram(f"no valid rsalt {Short(request, 300)}",
                            self.Sign(request), None)
        request = self.Request()
        if kind == "bad-hmac":
            how = rng.randrange(4)
            if how == 0:
                payload = self.Sign(request, key=fg.Word(rng).encode())
            elif how == 1:
                payload = self.Sign(request, key=self.key.strip() + b"x")
            else:
                outer = json.loads(self.Sign(request)[4:])
                digest = outer["hmac"]
                outer["hmac"] = digest[:-1] + ("0" if digest[-1] != "0" else "1") \
                    if how == 2 else rng.choice(["", "0" * 40, 42, None])
                payload = self.Envelope(outer["msg"], outer["salt"], outer["hmac"])
            return Datagram(f"bad HMAC ({how})", payload, None)
        if kind == "stale":
            skew = constants.CONFD_MAX_CLOCK_SKEW + rng.choice([5, 600, 10**6])
            return Datagram(f"stale by {skew}s", self.Sign(request, str(now - skew)), None)
        if kind == "future":
            skew = constants.CONFD_MAX_CLOCK_SKEW + rng.choice([5, 600, 10**9])
            return Datagram(f"future by {skew}s", self.Sign(request, str(now + skew)),
                            None)
        if kind == "odd-salt":
            salt = rng.choice(["nan", "inf", "-inf", "", "abc", "1e999", "0x10",
                               fg.Word(rng), "\u0663" * 3, str(now) + "x"])
            return Datagram(f"salt {salt!r}", self.Sign(request, salt), None)
        if kind == "unsigned":
            msg = json.dumps(request)
            variants = [
                constants.CONFD_MAGIC_FOURCC + json.dumps({"msg": msg, "salt": str(now)})
                .encode(),
                self.Envelope(msg, now, "0"),
                self.Envelope(request, str(now), "0"),
                self.Envelope(None, None, None),
            ]
            return Datagram("unsigned", rng.choice(variants), None)
        if kind == "no-magic":
            payload = self.Sign(request)
            return Datagram("no magic", rng.choice([payload[4:], b"PLJ0" + payload[4:],
                                                    b"plj1" + payload[4:]]), None)
        if kind == "junk":
            payload = rng.choice([
                fg.RandomBytes(rng, rng.randint(0, 600)),
                constants.CONFD_MAGIC_FOURCC + fg.JsonJunk(rng),
                fg.Mutate(rng, self.Sign(request)),
            ])
            return Datagram("junk", payload, None, request["rsalt"])
        if kind == "oversized":
            request["query"] = "x" * constants.MAX_UDP_DATA_SIZE
            return Datagram("oversized", self.Sign(request)[:65000], None)
        if kind == "msg-not-json":
            msg = rng.choice(["not json", "{", "[" * 5000, "NaN"])
            salt = str(now)
            digest = hmac.new(self.key, (salt + msg).encode(), hashlib.sha1).hexdigest()
            return Datagram(f"signed non-JSON {msg[:20]!r}", self.Envelope(msg, salt, digest),
                            None)
        # msg-not-object
        return Datagram("signed non-object", self.Sign(rng.choice(
            [[request], "rsalt", 42, None, [request["rsalt"]]])), None)

    def Batch(self, kinds: list[str], sock: socket.socket) -> None:
        run = self.run
        grams = [self.Make(kind) for kind in kinds]
        sentinel = Datagram("ping sentinel", b"", None)
        ping = self.Request(constants.CONFD_REQ_PING)
        ping.pop("query", None)
        sentinel.payload, sentinel.rsalt = self.Sign(ping), ping["rsalt"]
        grams.append(sentinel)
        run.Describe("batch: " + " | ".join(g.what for g in grams))
        due: collections.Counter[tuple[str, Any]] = collections.Counter()
        maybe: collections.Counter[tuple[str, Any]] = collections.Counter()
        for gram in grams:
            for peer in self.target.confd_peers:
                try:
                    sock.sendto(gram.payload, peer)
                except OSError as err:
                    if len(gram.payload) <= constants.MAX_UDP_DATA_SIZE:
                        run.Fail(f"cannot send a datagram: {err}")
                    continue
                if gram.rsalt is not None:
                    due[(gram.rsalt, peer)] += 1
                if gram.maybe_rsalt is not None:
                    maybe[(gram.maybe_rsalt, peer)] += 1
        by_rsalt = {g.rsalt: g for g in grams if g.rsalt is not None}
        by_rsalt.update((g.maybe_rsalt, g) for g in grams if g.maybe_rsalt is not None)
        deadline = time.monotonic() + REQUEST_BOUND
        while +due and any(due[(sentinel.rsalt, p)] for p in self.target.confd_peers):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                payload, peer = sock.recvfrom(65536)
            except TimeoutError:
                break
            self.CheckReply(payload, peer, due, maybe, by_rsalt)
        missing = [(rsalt, peer) for (rsalt, peer), count in due.items() if count > 0]
        run.Check(not missing, "no reply within the bound to: " + "; ".join(
            f"{by_rsalt[rsalt].what[:300]} (from {peer[0]})" for rsalt, peer in missing[:5]))

    def CheckReply(self, payload: bytes, peer: Any, due: collections.Counter,
                   maybe: collections.Counter, by_rsalt: dict[Any, Datagram]) -> None:
        run = self.run
        try:
            reply, salt = confd_protocol.UnpackReply(payload, self.key)
        except errors.GenericError as err:
            run.Fail(f"invalid reply from {peer}: {err}: {payload[:300]!r}")
            return
        run.tally[f"reply status {reply.status}"] += 1
        if due[(salt, peer)] > 0:
            due[(salt, peer)] -= 1
        elif maybe[(salt, peer)] > 0:
            maybe[(salt, peer)] -= 1
        else:
            gram = by_rsalt.get(salt)
            run.Fail(f"reply from {peer} to a datagram it must drop or answer once:"
                     f" {gram.what if gram else salt!r}: {Short(reply, 300)}")
            return
        run.Check(reply.status in (constants.CONFD_REPL_STATUS_OK,
                                   constants.CONFD_REPL_STATUS_ERROR,
                                   constants.CONFD_REPL_STATUS_NOTIMPLEMENTED),
                  f"reply with status {reply.status}")
        run.Check(not (isinstance(reply.answer, str)
                       and reply.answer.startswith("Internal error")),
                  f"internal error answering {by_rsalt[salt].what}: {reply.answer!r}")

    def Go(self) -> None:
        run = self.run
        kinds = run.Kinds(self.KINDS, self.WEIGHTS)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        try:
            for start in range(0, len(kinds), self.BATCH):
                batch = kinds[start:start + self.BATCH]
                run.index = start + len(batch) - 1
                run.tally.update(f"kind {kind}" for kind in batch)
                self.Batch(batch, sock)
                if len(run.failures) >= MAX_FAILURES or run.CheckAlive():
                    break
        finally:
            sock.close()


def _RequestTypes() -> list[int]:
    """Every confd request type (CONFD_REQ_* constants)."""
    return [value for name, value in vars(constants).items()
            if name.startswith("CONFD_REQ_") and isinstance(value, int)]
