"""The cluster under test, the bookkeeping of a wire, HTTPS exchanges and
random values that know the cluster: what every wire's fuzzer uses."""

from __future__ import annotations

import collections
import http.client
import os
import random
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganeti import constants, ht, opcodes, vcluster

from . import gen as fg

if TYPE_CHECKING:
    from vcluster import VirtualCluster

SEED_ENV = "GANETI_FUZZ_SEED"
ITERATIONS_ENV = "GANETI_FUZZ_ITERATIONS"
DEFAULT_ITERATIONS = 300
#: Seconds a request may take before it counts as a hang
REQUEST_BOUND = 10.0
#: ... for requests that ask to wait (luxi WaitForJobChange, RAPI job waits)
WAIT_BOUND = 25.0
#: Memory a daemon may have grown by after the fuzz (see the module doc)
RSS_SLACK_MIB = 50
RSS_SLACK_RATIO = 0.5
#: A wire stops after this many failures (the first ones tell the story)
MAX_FAILURES = 10
INSTANCE = "fz1.vcluster.test"
READER = ("fz-reader", "fz-reader-secret")
NODED_PORT = constants.DEFAULT_NODED_PORT


def _Seed() -> int:
    raw = os.environ.get(SEED_ENV, "").strip()
    return int(raw) if raw else random.SystemRandom().randrange(2**32)


def _Iterations() -> int:
    raw = os.environ.get(ITERATIONS_ENV, "").strip()
    return max(1, int(raw)) if raw else DEFAULT_ITERATIONS


SEED = _Seed()
ITERATIONS = _Iterations()
REPLAY = f"replay with {SEED_ENV}={SEED} {ITERATIONS_ENV}={ITERATIONS}"


def Short(value: Any, limit: int = 1500) -> str:
    """``value`` as text, cut to ``limit`` characters (for messages)."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


class Hang(Exception):
    """A daemon did not answer within the bound."""


# --- The cluster under test ----------------------------------------------------------


@dataclass
class Target:
    """What the fuzzers need to know of the virtual cluster."""
    vc: VirtualCluster
    master: vcluster.Node
    nodes: list[vcluster.Node]
    luxi_paths: list[str]
    rapi_host: str
    rapi_port: int
    rapi_ca: str
    admin: tuple[str, str]
    reader: tuple[str, str]
    confd_peers: list[tuple[str, int]]
    hmac_key: bytes
    noded_ca: str
    noded_cert: str
    cluster_name: str
    #: (node, daemon) -> pid, taken after the warm-up
    pids: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (node, daemon) -> VmRSS in KiB after the warm-up
    rss: dict[tuple[str, str], int] = field(default_factory=dict)
    #: query resource -> field names (learned from the master)
    fields: dict[str, list[str]] = field(default_factory=dict)
    #: job ids seen (submitted by the fuzz or listed by the master)
    job_ids: list[int] = field(default_factory=list)
    config_serial: int = 0

    @classmethod
    def FromCluster(cls, vc: VirtualCluster) -> Target:
        """Read the cluster's state, env file and keys."""
        state = vc.state()
        assert state is not None
        env = SourceEnv(vc)
        master = vc.node(vc.master())
        data = Path(master.root) / constants.DEFAULT_DATA_DIR.lstrip("/")
        sockets = Path(master.root) / constants.DEFAULT_RUN_DIR.lstrip("/") / "socket"
        candidates = vcluster.CandidateNames(state)
        return cls(
            vc=vc, master=master, nodes=list(vc.nodes),
            luxi_paths=[str(sockets / "ganeti-master"), str(sockets / "ganeti-query")],
            rapi_host=env["RAPI_HOST"], rapi_port=int(env["RAPI_PORT"]),
            rapi_ca=str(data / constants.RAPI_PEM_NAME),
            admin=(env["RAPI_USER"], env["RAPI_PASSWORD"]), reader=READER,
            confd_peers=[(vc.node(name).ip, state.confd_port) for name in candidates],
            hmac_key=(data / "hmac.key").read_bytes(),
            noded_ca=str(data / "server.pem"), noded_cert=str(data / "client.pem"),
            cluster_name=state.cluster_name)

    @property
    def node_names(self) -> list[str]:
        """Every node's name, node 1 first."""
        return [node.name for node in self.nodes]

    def Daemons(self) -> dict[tuple[str, str], int]:
        """The live daemons now: (node, daemon) -> pid."""
        return self.vc.daemons()

    def DeadDaemons(self) -> list[str]:
        """The daemons of :attr:`pids` that are gone or were replaced."""
        now = self.Daemons()
        return [f"{daemon} on {node} (pid {pid}, now {now.get((node, daemon))})"
                for (node, daemon), pid in sorted(self.pids.items())
                if now.get((node, daemon)) != pid]

    def Rss(self) -> dict[tuple[str, str], int]:
        """VmRSS (KiB) of every daemon of :attr:`pids`."""
        return {key: _VmRss(pid) for key, pid in self.pids.items()}

    def ConfigSerial(self) -> int:
        """The serial number of the master's configuration."""
        return int(self.vc.config()["serial_no"])

    def NameOfPath(self, node: vcluster.Node, path: str) -> str:
        """An absolute path inside ``node``'s root (where a node looks)."""
        return str(Path(node.root) / path.lstrip("/"))

    def Pool(self) -> list[Any]:
        """Values the daemons know, mixed into random values."""
        return [*self.node_names, INSTANCE, "default", "noop+default", "noop",
                constants.HT_FAKE, self.cluster_name, *[n.ip for n in self.nodes],
                *self.job_ids[-5:]]


def SourceEnv(vc: VirtualCluster) -> dict[str, str]:
    """The variables the cluster's env file sets (RAPI credentials...)."""
    result = subprocess.run(["sh", "-c", f". {vc.directory}/env && env -0"],
                            capture_output=True, timeout=30, check=True)
    return dict(item.split("=", 1) for item in
                result.stdout.decode().split("\0") if "=" in item)


def _VmRss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fd:
            for line in fd:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


# --- Bookkeeping of one wire ------------------------------------------------------------


class Run:
    """The cases of one wire: its generator, failures and tallies."""

    def __init__(self, wire: str, target: Target, iterations: int = ITERATIONS) -> None:
        self.wire = wire
        self.target = target
        self.iterations = iterations
        self.rng = random.Random(f"{SEED}/{wire}")
        self.failures: list[str] = []
        self.tally: collections.Counter[str] = collections.Counter()
        self.case = ""
        self.index = -1
        self.started = time.monotonic()
        self.dead: list[str] = []

    def Kinds(self, kinds: list[str], weights: list[float] | None = None) -> list[str]:
        """``iterations`` case kinds: every kind once (in random order),
        then random ones."""
        first = list(kinds)
        self.rng.shuffle(first)
        rest = self.rng.choices(kinds, weights, k=max(0, self.iterations - len(first)))
        return (first + rest)[:self.iterations]

    def Cases(self, kinds: list[str], weights: list[float] | None = None
              ) -> Iterator[str]:
        """Yield the case kinds of :meth:`Kinds`; check every few cases that
        no daemon died, and stop early after too many failures or a death."""
        for index, kind in enumerate(self.Kinds(kinds, weights)):
            self.index = index
            self.case = kind
            self.tally[f"kind {kind}"] += 1
            yield kind
            if self.index % 10 == 9 and self.CheckAlive():
                return
            if len(self.failures) >= MAX_FAILURES:
                return
        self.CheckAlive()

    def CheckAlive(self) -> bool:
        """Record a failure (and return True) if a daemon died."""
        dead = self.target.DeadDaemons()
        if dead and not self.dead:
            self.dead = dead
            self.Fail(f"daemon(s) died or were replaced: {', '.join(dead)}; the"
                      " input of this or one of the 10 cases before")
        return bool(dead)

    def Describe(self, text: str) -> None:
        """Say what the current case sends (shown if it fails)."""
        self.case = text

    def Fail(self, what: str) -> None:
        """Record a failure of the current case."""
        self.failures.append(f"[{self.wire} case #{self.index}] {what}\n"
                             f"    input: {Short(self.case)}")

    def Check(self, condition: bool, what: str) -> bool:
        """Record a failure unless ``condition``; return ``condition``."""
        if not condition:
            self.Fail(what)
        return condition

    def Finish(self) -> None:
        """Print the tallies; fail with every failure and the seed."""
        elapsed = time.monotonic() - self.started
        print(f"{self.wire}: {self.index + 1} cases in {elapsed:.1f}s (seed {SEED})")
        for key, count in sorted(self.tally.items()):
            print(f"  {key}: {count}")
        assert not self.failures, (
            f"{len(self.failures)} failure(s) fuzzing {self.wire}; {REPLAY}\n"
            + "\n".join(self.failures))


# --- Random values that know the cluster -----------------------------------------------

_PARAM_HINTS: list[tuple[str, Callable[[random.Random, Target], Any]]] = [
    ("instance", lambda rng, t: rng.choice([INSTANCE, fg.Word(rng) + ".invalid"])),
    ("node", lambda rng, t: rng.choice(t.node_names + [fg.Word(rng)])),
    ("group", lambda rng, t: rng.choice(["default", fg.Word(rng)])),
    ("os", lambda rng, t: rng.choice(["noop+default", "noop", fg.Word(rng)])),
    ("hypervisor", lambda rng, t: rng.choice([constants.HT_FAKE, "kvm", fg.Word(rng)])),
    ("tags", lambda rng, t: [fg.Word(rng) for _ in range(rng.randint(0, 3))]),
    ("duration", lambda rng, t: rng.choice([0.01, 0, -1, "1", None])),
    ("memory", lambda rng, t: rng.choice([128, 0, -5, "128M", 2**40])),
    ("size", lambda rng, t: rng.choice([1024, 0, -1, "1G"])),
]


def ParamValue(rng: random.Random, target: Target, name: str) -> Any:
    """A value for an opcode (or body) parameter called ``name``."""
    if rng.random() < 0.6:
        for hint, make in _PARAM_HINTS:
            if hint in name:
                return make(rng, target)
    return fg.Value(rng, 2, target.Pool())


def RandomOpcode(rng: random.Random, target: Target) -> dict[str, Any]:
    """A random opcode dict (any OP_ID) that is always a dry run."""
    op_id = rng.choice(sorted(opcodes.OP_MAPPING))
    data: dict[str, Any] = {"OP_ID": op_id}
    for name, default, _, _ in opcodes.OP_MAPPING[op_id].GetAllParams():
        if default is ht.NoDefault or rng.random() < 0.15:
            data[name] = ParamValue(rng, target, name)
    if rng.random() < 0.1:
        data[fg.Key(rng)] = fg.Value(rng, 1)
    if rng.random() < 0.05:
        del data["OP_ID"]
    return MakeDryRun(data)


def MakeDryRun(op: Any) -> Any:
    """``op`` with ``dry_run`` forced on, if it is an opcode dict."""
    if isinstance(op, dict):
        op[constants.OP_DRY_RUN] = True
    return op


# --- HTTP (RAPI and noded) --------------------------------------------------------------


@dataclass
class HttpAnswer:
    """An HTTP answer read within the bound."""
    status: int
    headers: dict[str, str]
    body: bytes


class HttpsTarget:
    """An HTTPS server: keep-alive requests and raw exchanges."""

    def __init__(self, host: str, port: int, ctx: ssl.SSLContext) -> None:
        self.host = host
        self.port = port
        self.ctx = ctx
        self.conn: http.client.HTTPSConnection | None = None

    def Request(self, method: str, target: str, headers: dict[str, str],
                body: bytes | None, bound: float = REQUEST_BOUND,
                fresh: bool = False) -> HttpAnswer:
        """One request on the kept-open connection (a new one if ``fresh``).

        @raise Hang: when the answer does not come within ``bound``
        """
        if fresh or self.conn is None:
            self.Close()
            self.conn = http.client.HTTPSConnection(self.host, self.port,
                                                    context=self.ctx, timeout=bound)
        conn = self.conn
        conn.timeout = bound
        try:
            if conn.sock is not None:
                conn.sock.settimeout(bound)
            conn.request(method, target, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except TimeoutError:
            self.Close()
            raise Hang(f"no answer to {method} within {bound:g}s") from None
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # A kept-open connection the server closed meanwhile: retry once
            self.Close()
            if fresh:
                raise
            return self.Request(method, target, headers, body, bound, fresh=True)
        answer = HttpAnswer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        if resp.will_close:
            self.Close()
        return answer

    def Raw(self, data: bytes, ctx: ssl.SSLContext | None = None, tls: bool = True,
            bound: float = REQUEST_BOUND) -> tuple[list[HttpAnswer], str]:
        """Send raw bytes on a new connection; read the answers until the
        server closes or stops sending (one complete answer is enough).

        Returns the answers and how the exchange ended.
        @raise Hang: when nothing at all happens within ``bound``
        """
        deadline = time.monotonic() + bound
        sock = socket.create_connection((self.host, self.port), timeout=bound)
        try:
            if tls:
                try:
                    sock = (ctx or self.ctx).wrap_socket(sock, server_hostname=None)
                except (ssl.SSLError, OSError) as err:
                    return [], f"TLS handshake refused ({type(err).__name__})"
            try:
                sock.sendall(data)
            except (ssl.SSLError, OSError) as err:
                return [], f"send failed ({type(err).__name__})"
            received = b""
            while True:
                answers, complete = ParseHttpAnswers(received)
                if complete:
                    return answers, "answered"
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Hang(f"no complete answer nor close within {bound:g}s"
                               f" (got {received[:200]!r})")
                sock.settimeout(remaining)
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    raise Hang(f"no complete answer nor close within {bound:g}s"
                               f" (got {received[:200]!r})") from None
                except (ssl.SSLError, ConnectionResetError) as err:
                    return ParseHttpAnswers(received)[0], \
                        f"connection reset ({type(err).__name__})"
                if not chunk:
                    return ParseHttpAnswers(received)[0], "closed"
                received += chunk
        finally:
            sock.close()

    def Close(self) -> None:
        """Close the kept-open connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


_STATUS_RE = re.compile(rb"HTTP/1\.[01] (\d{3})[^\r\n]*\r?\n")


def ParseHttpAnswers(data: bytes) -> tuple[list[HttpAnswer], bool]:
    """The answers in ``data`` and whether the first one is complete."""
    answers = []
    complete = False
    pos = 0
    while True:
        match = _STATUS_RE.match(data, pos)
        if match is None:
            break
        head_end = data.find(b"\r\n\r\n", match.end() - 2)
        if head_end < 0:
            answers.append(HttpAnswer(int(match.group(1)), {}, b""))
            break
        headers = {}
        for line in data[match.end():head_end].split(b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        body = data[head_end + 4:head_end + 4 + length]
        answers.append(HttpAnswer(int(match.group(1)), headers, body))
        if len(body) < length:
            break
        complete = True
        pos = head_end + 4 + length
    return answers, complete


def ClientContext(ca: str, cert: str | None = None) -> ssl.SSLContext:
    """A TLS client context trusting ``ca``, presenting ``cert`` if given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(ca)
    if cert:
        ctx.load_cert_chain(cert)
    return ctx


def BadStatus(code: int) -> bool:
    """Whether an HTTP status shows a server fault: 5xx, except "not
    implemented" and "HTTP version not supported", which are answers to
    the request."""
    return code >= 500 and code not in (501, 505)


def RawJunk(run: Run, server: HttpsTarget, path: str, mode: str = "http-in-tls",
            ctx: ssl.SSLContext | None = None) -> list[HttpAnswer]:
    """Send raw malformed HTTP inside TLS (``http-in-tls``), HTTP as plain
    text (``plain-http``) or junk instead of a TLS handshake
    (``tls-junk``); the server must answer (without a fault) or close."""
    rng = run.rng
    if mode == "tls-junk":
        what, data = fg.TlsJunk(rng)
    else:
        what, data = fg.RawHttpJunk(rng, server.host, path)
    run.Describe(f"{what} ({mode}): {data[:600]!r}")
    try:
        answers, how = server.Raw(data, ctx=ctx, tls=mode == "http-in-tls")
    except Hang as err:
        run.Fail(f"hang: {err}")
        return []
    except OSError as err:
        run.Fail(f"cannot connect: {err}")
        return []
    run.tally[f"raw {mode} {how}"] += 1
    for answer in answers:
        run.tally[f"raw status {answer.status}"] += 1
        run.Check(not BadStatus(answer.status),
                  f"status {answer.status} to {what}: {answer.body[:300]!r}")
    return answers
