"""The luxi fuzzer: raw bytes on the master's two Unix sockets.

Cases: valid requests of every method (harmless arguments: opcodes are dry
runs, the drain flag is only cleared, the watcher never paused), mutated
ones (arguments replaced, added, dropped, reshaped; odd versions; extra
keys), odd method names, JSON junk, binary junk holding terminators, deep
and huge JSON, several messages in one write, a message written in small
pieces, one cut short by closing the writing side, one larger than
``LUXI_MAX_REQUEST_SIZE``.

Oracles: every complete message gets one answer, a decodable success or an
encoded Ganeti error that is not a Python exception the master did not
handle (``LuxiError`` "TypeError: ..."); afterwards the connection still
answers a request, except after a message cut short or too large, which is
answered with an error and the connection closed; all within the bound.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import socket
import time
from typing import Any

from ganeti import constants, errors
from ganeti.luxi import client as luxi_names
from ganeti.luxi import protocol as luxi_protocol

from . import gen as fg
from .core import REQUEST_BOUND, WAIT_BOUND, Hang, Run, Short, RandomOpcode, MakeDryRun


_EOM = constants.LUXI_EOM
_BUILTIN_EXCEPTIONS = {name for name, value in vars(builtins).items()
                       if isinstance(value, type) and issubclass(value, BaseException)}
_UNHANDLED_RE = re.compile(r"^([A-Za-z_]\w*): ")


class LuxiConn:
    """A raw connection to a luxi socket."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(REQUEST_BOUND)
        with luxi_protocol.SocketAddress(path) as address:
            self.sock.connect(address)
        self.splitter = luxi_protocol.FrameSplitter(64 * 1024 * 1024)
        self.eof = False

    def Send(self, data: bytes) -> bool:
        """Send ``data``; False if the server closed the connection first."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def Receive(self, count: int, bound: float) -> list[bytes]:
        """Up to ``count`` messages (fewer if the server closes).

        @raise Hang: when they do not come within ``bound`` seconds
        """
        deadline = time.monotonic() + bound
        messages: list[bytes] = []
        while len(messages) < count:
            msg = self.splitter.Pop()
            if msg is not None:
                messages.append(msg)
                continue
            if self.eof:
                break
            self._Read(deadline, f"{len(messages)} of {count} answer(s)")
        return messages

    def WaitClosed(self, bound: float) -> bytes:
        """Read until the server closes; return what came meanwhile."""
        deadline = time.monotonic() + bound
        extra = b""
        while not self.eof:
            extra += self._Read(deadline, "the server to close the connection")
        return extra

    def _Read(self, deadline: float, what: str) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Hang(f"no {what} within the bound")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 20)
        except TimeoutError:
            raise Hang(f"no {what} within the bound") from None
        except ConnectionResetError:
            data = b""
        if data:
            self.splitter.Feed(data)
        else:
            self.eof = True
        return data

    def Call(self, method: str, args: list[Any]) -> tuple[bool, Any]:
        """One well-formed request; its (success, result)."""
        self.Send(luxi_protocol.Frame(luxi_protocol.FormatRequest(method, args)))
        answers = self.Receive(1, REQUEST_BOUND)
        assert answers, f"no answer to {method}"
        return luxi_protocol.ParseResponse(answers[0])[:2]

    def Close(self) -> None:
        self.sock.close()


def _LuxiMessage(method: Any, args: Any, version: Any = None, **extra: Any) -> dict:
    msg: dict[str, Any] = {luxi_protocol.KEY_METHOD: method,
                           luxi_protocol.KEY_ARGS: args}
    if version is not None:
        msg[luxi_protocol.KEY_VERSION] = version
    msg.update(extra)
    return msg


class LuxiFuzzer:
    """The luxi cases and their oracles (see the module doc)."""

    KINDS = ["valid", "mutated", "method", "junk", "junk-with-eom", "deep", "huge",
             "pipelined", "empty", "chunked", "truncated", "oversized"]
    WEIGHTS = [20, 30, 6, 8, 4, 4, 2, 5, 3, 4, 4, 0.3]

    def __init__(self, run: Run) -> None:
        self.run = run
        self.rng = run.rng
        self.target = run.target
        self.conn: LuxiConn | None = None

    # --- messages ---

    def Valid(self) -> tuple[str, list[Any]]:
        """A well-formed request of a random method (harmless arguments)."""
        rng, t = self.rng, self.target
        what = rng.choice(sorted(t.fields) or ["node"])
        fields = rng.sample(t.fields.get(what, ["name"]),
                            min(len(t.fields.get(what, ["name"])), rng.randint(1, 6)))
        job_id = rng.choice(t.job_ids + [0, 999999]) if rng.random() < 0.8 \
            else fg.Scalar(rng)
        job_fields = rng.sample(t.fields.get("job", ["id", "status"]), 2)
        choices: list[tuple[str, list[Any]]] = [
            (luxi_names.REQ_QUERY_CLUSTER_INFO, []),
            (luxi_names.REQ_QUERY_CONFIG_VALUES,
             [rng.sample(["cluster_name", "master_node", "drain_flag", "watcher_pause",
                          "cluster_tags", "name", "nosuchfield"], rng.randint(1, 3))]),
            (luxi_names.REQ_QUERY, [what, fields, self.Filter(fields)]),
            (luxi_names.REQ_QUERY_FIELDS, [what, rng.choice([None, fields])]),
            (luxi_names.REQ_QUERY_JOBS, [rng.choice([None, [job_id]]), job_fields]),
            (luxi_names.REQ_WAIT_FOR_JOB_CHANGE,
             [job_id, ["status"], rng.choice([None, ["success"], ["running"]]),
              rng.choice([None, 0, 5]), rng.choice([0, 0.1, 1])]),
            (luxi_names.REQ_CANCEL_JOB, [job_id]),
            (luxi_names.REQ_CHANGE_JOB_PRIORITY, [job_id, rng.choice([-5, 0, 10])]),
            (luxi_names.REQ_ARCHIVE_JOB, [job_id]),
            (luxi_names.REQ_AUTO_ARCHIVE_JOBS, [rng.choice([3600, -1, 0]), 1]),
            (luxi_names.REQ_SUBMIT_JOB, [[RandomOpcode(rng, t)
                                         for _ in range(rng.randint(1, 3))]]),
            (luxi_names.REQ_SUBMIT_JOB_TO_DRAINED_QUEUE, [[RandomOpcode(rng, t)]]),
            (luxi_names.REQ_SUBMIT_MANY_JOBS, [[[RandomOpcode(rng, t)]
                                               for _ in range(rng.randint(1, 3))]]),
            (luxi_names.REQ_SET_DRAIN_FLAG, [False]),
            (luxi_names.REQ_SET_WATCHER_PAUSE, [None]),
        ]
        return rng.choice(choices)

    def Filter(self, fields: list[str]) -> Any:
        rng = self.rng
        name = rng.choice(fields)
        simple = [
            None,
            ["=", name, fg.Value(rng, 0, self.target.Pool())],
            ["!=", name, fg.Scalar(rng)],
            ["=~", name, rng.choice(["^node", "(", ".*", "[a-", "(a+)+$"])],
            ["?", name],
            ["<", name, fg.Scalar(rng)],
            ["=[]", name, fg.Scalar(rng)],
        ]
        flt = rng.choice(simple)
        if flt is not None and rng.random() < 0.3:
            flt = [rng.choice(["|", "&", "!"]), flt, rng.choice(simple[1:])]
        if rng.random() < 0.15:
            flt = fg.Value(rng, 3, ["=", "|", "&", "!", "?", name])
        return flt

    def Mutated(self) -> tuple[dict[str, Any], str]:
        """A valid request with one or more random changes."""
        rng = self.rng
        method, args = self.Valid()
        args = list(args)
        what = []
        for _ in range(rng.randint(1, 3)):
            change = rng.randrange(8)
            is_list = isinstance(args, list)
            if change == 0 and is_list and args:
                args[rng.randrange(len(args))] = fg.Value(rng, 3, self.target.Pool())
                what.append("argument replaced")
            elif change == 1 and is_list:
                args.append(fg.Value(rng, 2))
                what.append("argument added")
            elif change == 2 and is_list and args:
                del args[rng.randrange(len(args))]
                what.append("argument dropped")
            elif change == 3:
                args = fg.Value(rng, 2)
                what.append("args not a list")
            elif change == 4 and is_list and args and isinstance(args[0], list) and args[0]:
                inner = args[0]
                inner[rng.randrange(len(inner))] = fg.Value(rng, 3, self.target.Pool())
                what.append("element of the first argument replaced")
            elif change == 5:
                what.append("version")
                return _LuxiMessage(method, args, rng.choice(
                    [constants.LUXI_VERSION, -1, 2**70, "1", True, 1.5, [1]])), \
                    ", ".join(what)
            elif change == 6:
                what.append("extra key")
                return _LuxiMessage(method, args, **{fg.Key(rng): fg.Value(rng, 1)}), \
                    ", ".join(what)
            elif is_list:
                what.append("argument shapes swapped")
                args = [fg.Value(rng, 1) if isinstance(a, (list, dict)) else [a]
                        for a in args]
        return _LuxiMessage(method, args), ", ".join(what)

    def OddMethod(self) -> dict[str, Any]:
        rng = self.rng
        name = rng.choice(sorted(luxi_names.REQ_ALL))
        method = rng.choice([
            name.lower(), name.upper(), name + "X", " " + name, name[:-1],
            fg.Word(rng), rng.choice(fg.ODD_STRINGS), None, 42, [name], {"n": name},
            "__init__", "_Answer", "Methods", "__class__"])
        msg = _LuxiMessage(method, [])
        if rng.random() < 0.3:
            del msg[rng.choice([luxi_protocol.KEY_METHOD, luxi_protocol.KEY_ARGS])]
        return msg

    @staticmethod
    def Sanitize(msg: Any) -> Any:
        """Keep a request harmless: no drain flag, no watcher pause in the
        future, every opcode a dry run."""
        if not isinstance(msg, dict):
            return msg
        method, args = msg.get(luxi_protocol.KEY_METHOD), msg.get(luxi_protocol.KEY_ARGS)
        if not isinstance(args, list) or not args:
            return msg
        if method == luxi_names.REQ_SET_DRAIN_FLAG and args[0] is not False:
            args[0] = "no" if args[0] is True else args[0]
        elif method == luxi_names.REQ_SET_WATCHER_PAUSE and \
                isinstance(args[0], (int, float)) and not isinstance(args[0], bool):
            args[0] = -abs(args[0]) - 1
        elif method in (luxi_names.REQ_SUBMIT_JOB,
                        luxi_names.REQ_SUBMIT_JOB_TO_DRAINED_QUEUE) and \
                isinstance(args[0], list):
            for op in args[0]:
                MakeDryRun(op)
        elif method == luxi_names.REQ_SUBMIT_MANY_JOBS and isinstance(args[0], list):
            for job in args[0]:
                for op in job if isinstance(job, list) else []:
                    MakeDryRun(op)
        return msg

    def Encode(self, msg: Any) -> bytes:
        """The JSON text of a (sanitised) request; NaN allowed, no EOM."""
        text = json.dumps(self.Sanitize(msg), allow_nan=True,
                          ensure_ascii=self.rng.random() < 0.8)
        return text.encode("utf-8", "surrogatepass").replace(_EOM, b"\\u0003")

    # --- the cases ---

    def Case(self, kind: str) -> None:
        rng = self.rng
        closing = False
        bound = REQUEST_BOUND
        if kind == "valid":
            method, args = self.Valid()
            if method == luxi_names.REQ_WAIT_FOR_JOB_CHANGE:
                bound = WAIT_BOUND
            payload = [self.Encode(_LuxiMessage(method, args))]
        elif kind == "mutated":
            msg, _ = self.Mutated()
            if msg.get(luxi_protocol.KEY_METHOD) == luxi_names.REQ_WAIT_FOR_JOB_CHANGE:
                bound = WAIT_BOUND
            payload = [self.Encode(msg)]
        elif kind == "method":
            payload = [self.Encode(self.OddMethod())]
        elif kind == "junk":
            payload = [fg.JsonJunk(rng, exclude=_EOM)]
        elif kind == "junk-with-eom":
            junk = fg.RandomBytes(rng, rng.randint(1, 400)) + _EOM
            payload = junk.split(_EOM)[:-1]
        elif kind == "deep":
            depth = rng.choice([127, 129, 1000, 100000])
            payload = [self.Encode(_LuxiMessage(luxi_names.REQ_QUERY_CONFIG_VALUES, []))
                       .replace(b"[]", fg.Deep(depth).encode(), 1)]
        elif kind == "huge":
            size = rng.choice([64 * 1024, 1024 * 1024, 6 * 1024 * 1024])
            payload = [self.Encode(_LuxiMessage(
                rng.choice([luxi_names.REQ_QUERY_CONFIG_VALUES, luxi_names.REQ_QUERY_JOBS,
                            luxi_names.REQ_CANCEL_JOB]),
                [["x" * size]] if rng.random() < 0.5 else [list(range(size // 8))]))]
        elif kind == "pipelined":
            payload = [self.Encode(_LuxiMessage(*self.Valid()))
                       for _ in range(rng.randint(2, 5))]
        elif kind == "empty":
            payload = [rng.choice([b"", b" ", b"\n\t ", b"{}", b"[]", b"null"])]
        elif kind == "chunked":
            payload = [self.Encode(_LuxiMessage(luxi_names.REQ_QUERY_CLUSTER_INFO, []))]
        elif kind == "truncated":
            closing = True
            payload = [self.Encode(_LuxiMessage(*self.Valid()))
                       for _ in range(rng.randint(0, 2))]
        else:  # oversized
            closing = True
            payload = []
        self.Exchange(kind, payload, closing, bound)

    def Exchange(self, kind: str, messages: list[bytes], closing: bool,
                 bound: float) -> None:
        """Send ``messages`` (each framed); for closing cases, an unfinished
        or oversized one after them; check the answers and the connection."""
        run, rng = self.run, self.rng
        if self.conn is None or rng.random() < 0.15:
            self.Reconnect()
        conn = self.conn
        assert conn is not None
        data = b"".join(m + _EOM for m in messages)
        tail = b""
        if kind == "truncated":
            tail = (self.Encode(_LuxiMessage(*self.Valid())) or b"{")[:rng.randint(1, 40)]
            tail = tail if tail.strip() else b"{"
        elif kind == "oversized":
            tail = b"[" + b" " * (constants.LUXI_MAX_REQUEST_SIZE + 1)
        run.Describe(f"{kind} on {os.path.basename(conn.path)}: "
                     f"{Short(data + tail, 1200)!s}")
        try:
            if kind == "chunked":
                for pos in range(0, len(data), 7):
                    conn.Send(data[pos:pos + 7])
            else:
                conn.Send(data + tail)
            if kind == "truncated":
                conn.sock.shutdown(socket.SHUT_WR)
            expected = len(messages) + (1 if closing else 0)
            answers = conn.Receive(expected, bound)
        except Hang as err:
            run.Fail(f"luxi hang: {err}")
            self.Reconnect()
            return
        if not closing and not run.Check(
                len(answers) == expected,
                f"{len(answers)} answer(s) to {expected} message(s) before the"
                " server closed the connection"):
            self.Reconnect()
            return
        for answer in answers:
            self.CheckAnswer(answer)
        if closing:
            if run.Check(len(answers) == expected,
                         f"{len(answers)} answer(s) to {expected} message(s) (the last"
                         " cut short or too large): the error answer is missing"):
                success = luxi_protocol.ParseResponse(answers[-1])[0]
                run.Check(not success, "a message cut short or too large succeeded")
            try:
                extra = conn.WaitClosed(bound)
                run.Check(not extra.strip(), f"data after the last answer: {extra[:200]!r}")
            except Hang as err:
                run.Fail(f"connection not closed after a {kind} message: {err}")
            self.Reconnect()
            return
        self.Ping()

    def CheckAnswer(self, answer: bytes) -> None:
        run = self.run
        try:
            success, result, _ = luxi_protocol.ParseResponse(answer)
        except luxi_protocol.ProtocolError as err:
            run.Fail(f"undecodable luxi answer {Short(answer, 300)}: {err}")
            return
        run.tally["answer success" if success else "answer error"] += 1
        if success:
            return
        decoded = errors.GetEncodedError(result)
        if not run.Check(decoded is not None and errors.GetErrorClass(result[0]) is not None,
                         f"error answer is not an encoded Ganeti error: {Short(result, 300)}"):
            return
        run.tally[f"error {result[0]}"] += 1
        message = str(result[1][0]) if result[1] else ""
        match = _UNHANDLED_RE.match(message)
        run.Check(not (result[0] == "LuxiError" and match
                       and match.group(1) in _BUILTIN_EXCEPTIONS),
                  f"unhandled exception in the master: {Short(result, 500)}")

    def Ping(self) -> None:
        """The connection must still serve a request."""
        conn = self.conn
        assert conn is not None
        request = luxi_protocol.Frame(luxi_protocol.FormatRequest(
            luxi_names.REQ_QUERY_CONFIG_VALUES, [["cluster_name"]]))
        try:
            if conn.Send(request):
                answers = conn.Receive(1, REQUEST_BOUND)
            else:
                answers = []
        except Hang as err:
            self.run.Fail(f"connection unusable after the case: {err}")
            self.Reconnect()
            return
        if not self.run.Check(
                len(answers) == 1 and luxi_protocol.ParseResponse(answers[0])[:2]
                == (True, [self.target.cluster_name]),
                f"connection unusable after the case: {Short(answers, 300)}"):
            self.Reconnect()

    def Reconnect(self) -> None:
        if self.conn is not None:
            self.conn.Close()
        self.conn = LuxiConn(self.rng.choice(self.target.luxi_paths))

    def Go(self) -> None:
        try:
            for kind in self.run.Cases(self.KINDS, self.WEIGHTS):
                self.Case(kind)
        finally:
            if self.conn is not None:
                self.conn.Close()
