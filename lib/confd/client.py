"""The confd client library.

A query goes to a subset of the master candidates' confd daemons; every
answer that arrives, checked (HMAC, response salt), is handed to a
callback as a :class:`ConfdUpcallPayload`. Clients keep the answer with the
highest configuration serial number, since candidates may be stale.

Callback interface (as Ganeti's)::

    client = ConfdClient(hmac_key, peers, callback)
    req = ConfdClientRequest(type=constants.CONFD_REQ_NODE_ROLE_BYNAME,
                             query="node1.example.com")
    client.SendRequest(req)
    while ...:
        client.ReceiveReply()

:class:`ConfdFilterCallback` drops answers older than one already seen (and
duplicates); :class:`ConfdCountingCallback` tells when all expected answers
arrived; :class:`StoreResultCallback` keeps them. The blocking helper
:func:`QueryOnce` does all of it and returns a :class:`QueryResult`.

Peers are addresses (then ``port`` applies) or ``(address, port)`` pairs,
so that several daemons can share a machine (virtual clusters).
"""

from __future__ import annotations

import logging
import random
import select
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ganeti import constants, errors, pathutils, utils
from ganeti.confd import protocol
from ganeti.confd.protocol import ConfdReply, ConfdRequest, NewRequestSalt

__all__ = [
    "ConfdClient",
    "ConfdClientRequest",
    "ConfdCountingCallback",
    "ConfdFilterCallback",
    "ConfdUpcallPayload",
    "QueryOnce",
    "QueryResult",
    "ReadHmacKey",
    "StoreResultCallback",
    "UPCALL_EXPIRE",
    "UPCALL_REPLY",
]

#: Upcall types: an answer arrived; a request expired
UPCALL_REPLY = 1
UPCALL_EXPIRE = 2

Peer = tuple[str, int]


def ReadHmacKey(path: str | None = None) -> bytes:
    """The confd HMAC key: the bytes of ``hmac.key``, as they are on disk.

    @raise errors.ConfdClientError: naming the file when it cannot be read
    """
    if path is None:
        path = pathutils.CONFD_HMAC_KEY
    try:
        with open(path, "rb") as fd:
            key = fd.read()
    except OSError as err:
        raise errors.ConfdClientError(
            f"Cannot read the confd HMAC key {path}: {err.strerror or err}"
        ) from err
    if not key.strip():
        raise errors.ConfdClientError(f"The confd HMAC key {path} is empty")
    return key


class ConfdClientRequest(ConfdRequest):
    """A request built by a client: checks the type, makes an rsalt."""

    def __init__(self, type: int, query: Any = None,
                 rsalt: str | None = None,
                 protocol: int = constants.CONFD_PROTOCOL_VERSION):
        if type not in constants.CONFD_REQS:
            raise errors.ConfdClientError(f"Invalid confd request type"
                                          f" {type!r}")
        super().__init__(type=type, query=query,
                         rsalt=rsalt or NewRequestSalt(),
                         protocol=protocol)


@dataclass
class ConfdUpcallPayload:
    """What a callback gets: an answer (UPCALL_REPLY) or an expiry."""
    salt: str
    type: int
    orig_request: ConfdRequest | None = None
    server_reply: ConfdReply | None = None
    server_ip: str | None = None
    server_port: int | None = None
    extra_args: Any = None
    client: ConfdClient | None = None


@dataclass
class _Pending:
    request: ConfdRequest
    args: Any
    expiry: float
    peers: list[Peer]
    answered: set[Peer] = field(default_factory=set)


def _NormalizePeers(peers: Iterable[str | Sequence[Any]], port: int
                    ) -> list[Peer]:
    result: list[Peer] = []
    address: Any
    peer_port: Any
    for peer in peers:
        if isinstance(peer, str):
            address, peer_port = peer, port
        elif isinstance(peer, Sequence) and len(peer) == 2:
            address, peer_port = peer[0], peer[1]
        else:
            raise errors.ConfdClientError(f"Invalid confd peer {peer!r}:"
                                          f" expected an address or"
                                          f" (address, port)")
        if not isinstance(address, str) or not utils.IsValidIP(address):
            raise errors.ConfdClientError(f"Invalid confd peer address"
                                          f" {address!r}")
        if not isinstance(peer_port, int) or isinstance(peer_port, bool) \
                or not 0 < peer_port < 65536:
            raise errors.ConfdClientError(f"Invalid confd peer port"
                                          f" {peer_port!r} for {address}")
        result.append((address, peer_port))
    return result


class ConfdClient:
    """Sends confd requests and hands the checked answers to a callback."""

    def __init__(self, hmac_key: str | bytes, peers: Iterable[Any],
                 callback: Callable[[ConfdUpcallPayload], None],
                 port: int | None = None,
                 logger: logging.Logger | None = None):
        if not callable(callback):
            raise errors.ConfdClientError("The confd callback is not callable")
        self._hmac_key = hmac_key.encode("utf-8") \
            if isinstance(hmac_key, str) else hmac_key
        self._callback = callback
        self._port = port if port is not None else constants.DEFAULT_CONFD_PORT
        self._log = logger or logging.getLogger("ganeti.confd.client")
        self._requests: dict[str, _Pending] = {}
        self._sockets: dict[int, socket.socket] = {}
        self._families: dict[str, int] = {}
        self._peers: list[Peer] = []
        self.UpdatePeerList(peers)

    # --- Peers and sockets -------------------------------------------------

    def UpdatePeerList(self, peers: Iterable[Any]) -> None:
        """Replace the list of daemons queried."""
        self._peers = _NormalizePeers(list(peers), self._port)

    @property
    def peers(self) -> list[Peer]:
        """The daemons queried, as (address, port)."""
        return list(self._peers)

    def _Socket(self, address: str) -> socket.socket:
        family = self._families.get(address)
        if family is None:
            family = self._families[address] = utils.GetAddressFamily(address)
        sock = self._sockets.get(family)
        if sock is None:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            self._sockets[family] = sock
        return sock

    def Close(self) -> None:
        """Close the sockets (the client may still be reused)."""
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    def __enter__(self) -> ConfdClient:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.Close()

    # --- Requests ----------------------------------------------------------

    def SendRequest(self, request: ConfdRequest, args: Any = None,
                    coverage: int | None = None, async_: bool = True) -> None:
        """Send ``request`` to ``coverage`` peers (picked at random).

        ``coverage`` None means min(peers, CONFD_DEFAULT_REQ_COVERAGE); 0 or
        less means all peers. With ``async_`` False, wait (up to the expiry
        timeout) until every peer asked has answered.
        """
        if request.rsalt in self._requests:
            raise errors.ConfdClientError(f"Duplicate request salt"
                                          f" {request.rsalt}")
        if not self._peers:
            raise errors.ConfdClientError("No confd peers to query")
        if coverage is None:
            coverage = min(len(self._peers),
                           constants.CONFD_DEFAULT_REQ_COVERAGE)
        elif coverage <= 0:
            coverage = len(self._peers)
        elif coverage > len(self._peers):
            raise errors.ConfdClientError(
                f"Coverage {coverage} is more than the {len(self._peers)}"
                f" confd peers")
        targets = self._peers if coverage == len(self._peers) \
            else random.sample(self._peers, coverage)
        payload = protocol.PackRequest(request, self._hmac_key)
        if len(payload) > constants.MAX_UDP_DATA_SIZE:
            raise errors.UdpDataSizeError(
                f"Confd request of {len(payload)} bytes is too large")
        self._requests[request.rsalt] = _Pending(
            request, args, time.monotonic() + constants.CONFD_CLIENT_EXPIRE_TIMEOUT,
            list(targets))
        for peer in targets:
            try:
                self._Socket(peer[0]).sendto(payload, peer)
            except OSError as err:
                self._log.warning("Cannot send a confd request to %s:%s: %s",
                                  peer[0], peer[1], err)
        if not async_:
            self.WaitForReply(request.rsalt)

    def HandleResponse(self, payload: bytes, ip: str, port: int) -> None:
        """Check one answer datagram and pass it to the callback."""
        try:
            reply, salt = protocol.UnpackReply(payload, self._hmac_key)
        except (errors.ConfdMagicError, errors.SignatureError,
                errors.ConfdClientError) as err:
            self._log.debug("Ignoring a datagram from %s:%s: %s", ip, port, err)
            return
        pending = self._requests.get(salt)
        if pending is None:
            self._log.debug("Ignoring an answer from %s:%s to an unknown or"
                            " expired request %s", ip, port, salt)
            return
        pending.answered.add((ip, port))
        self._callback(ConfdUpcallPayload(
            salt=salt, type=UPCALL_REPLY, orig_request=pending.request,
            server_reply=reply, server_ip=ip, server_port=port,
            extra_args=pending.args, client=self))

    def ExpireRequests(self, now: float | None = None) -> None:
        """Forget requests past their expiry; tell the callback."""
        if now is None:
            now = time.monotonic()
        for salt, pending in list(self._requests.items()):
            if pending.expiry <= now:
                self._Expire(salt)

    def _Expire(self, salt: str) -> None:
        pending = self._requests.pop(salt, None)
        if pending is None:
            return
        self._callback(ConfdUpcallPayload(
            salt=salt, type=UPCALL_EXPIRE, orig_request=pending.request,
            extra_args=pending.args, client=self))

    def CancelRequest(self, salt: str) -> None:
        """Stop waiting for a request's answers (expires it now)."""
        self._Expire(salt)

    def ReceiveReply(self, timeout: float = 1.0) -> bool:
        """Wait up to ``timeout`` for answers; handle all that are there.

        Returns whether any datagram arrived.
        """
        socks = list(self._sockets.values())
        if not socks:
            self.ExpireRequests()
            return False
        readable, _, _ = select.select(socks, [], [], max(timeout, 0))
        got = False
        for sock in readable:
            while True:
                try:
                    data, addr = sock.recvfrom(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as err:
                    # e.g. ECONNREFUSED reported for an earlier send
                    self._log.debug("Receiving a confd answer: %s", err)
                    continue
                got = True
                self.HandleResponse(data, addr[0], addr[1])
        self.ExpireRequests()
        return got

    def Answered(self, salt: str) -> tuple[int, int]:
        """(answers received, peers asked) for a pending request."""
        pending = self._requests.get(salt)
        if pending is None:
            return (0, 0)
        return (len(pending.answered), len(pending.peers))

    def WaitForReply(self, salt: str,
                     timeout: float = constants.CONFD_CLIENT_EXPIRE_TIMEOUT
                     ) -> tuple[int, int, int]:
        """Wait until every peer asked answered, or ``timeout`` passed.

        Returns (answers, peers asked, quorum); quorum is a majority of the
        peers asked. The request stays pending (late answers still reach
        the callback until it expires).
        """
        deadline = time.monotonic() + timeout
        while True:
            pending = self._requests.get(salt)
            if pending is None:
                raise errors.ConfdClientError(f"Unknown or expired confd"
                                              f" request {salt}")
            answered, asked = len(pending.answered), len(pending.peers)
            remaining = deadline - time.monotonic()
            if answered >= asked or remaining <= 0:
                return (answered, asked, asked // 2 + 1)
            self.ReceiveReply(remaining)


class ConfdFilterCallback:
    """Passes on only answers newer than those already seen for a request.

    Older answers (lower serial) and duplicates (same serial and answer) are
    dropped; ``consistent[salt]`` turns False when answers with the same
    serial disagree. Expiries are always passed on.
    """

    def __init__(self, callback: Callable[[ConfdUpcallPayload], None],
                 logger: logging.Logger | None = None):
        if not callable(callback):
            raise errors.ConfdClientError("The callback is not callable")
        self._callback = callback
        self._log = logger or logging.getLogger("ganeti.confd.client")
        self._answers: dict[str, ConfdReply] = {}
        self.consistent: dict[str, bool] = {}

    def _Filter(self, up: ConfdUpcallPayload) -> bool:
        assert up.server_reply is not None
        new = up.server_reply
        old = self._answers.get(up.salt)
        if old is None:
            self._answers[up.salt] = new
            self.consistent[up.salt] = True
            return False
        if new.serial < old.serial:
            self._log.debug("Dropping an older answer (serial %s < %s) from"
                            " %s", new.serial, old.serial, up.server_ip)
            return True
        if new.serial == old.serial:
            if (new.status, new.answer) != (old.status, old.answer):
                self.consistent[up.salt] = False
            return True
        self._answers[up.salt] = new
        return False

    def __call__(self, up: ConfdUpcallPayload) -> None:
        if up.type == UPCALL_REPLY:
            if self._Filter(up):
                return
        elif up.type == UPCALL_EXPIRE:
            self._answers.pop(up.salt, None)
            self.consistent.pop(up.salt, None)
        self._callback(up)


class ConfdCountingCallback:
    """Counts the answers per request; tells when all have come (or expired).

    Register each request's salt before sending it.
    """

    def __init__(self, callback: Callable[[ConfdUpcallPayload], None],
                 logger: logging.Logger | None = None):
        if not callable(callback):
            raise errors.ConfdClientError("The callback is not callable")
        self._callback = callback
        self._log = logger or logging.getLogger("ganeti.confd.client")
        self._answers: dict[str, int] = {}
        self._expected: dict[str, int | None] = {}

    def RegisterQuery(self, salt: str, expected: int | None = None) -> None:
        """Track a request; ``expected`` defaults to the peers it went to."""
        if salt in self._answers:
            raise errors.ConfdClientError(f"Query {salt} already registered")
        self._answers[salt] = 0
        self._expected[salt] = expected

    def AllAnswered(self) -> bool:
        """Whether every registered request got all answers or expired."""
        return not any(self._Waiting(salt) for salt in self._answers)

    def _Waiting(self, salt: str) -> bool:
        expected = self._expected[salt]
        return expected is None or self._answers[salt] < expected

    def __call__(self, up: ConfdUpcallPayload) -> None:
        if up.salt in self._answers:
            if up.type == UPCALL_EXPIRE:
                del self._answers[up.salt]
                del self._expected[up.salt]
            elif up.type == UPCALL_REPLY:
                self._answers[up.salt] += 1
                if self._expected[up.salt] is None and up.client is not None:
                    self._expected[up.salt] = up.client.Answered(up.salt)[1]
        self._callback(up)


class StoreResultCallback:
    """Keeps every upcall it gets (see :meth:`GetResponses`)."""

    def __init__(self) -> None:
        self._upcalls: list[ConfdUpcallPayload] = []

    def __call__(self, up: ConfdUpcallPayload) -> None:
        self._upcalls.append(up)

    def GetResponses(self) -> list[ConfdUpcallPayload]:
        """The answers received so far (expiries left out)."""
        return [up for up in self._upcalls if up.type == UPCALL_REPLY]

    def Clear(self) -> None:
        """Forget what was stored."""
        self._upcalls.clear()


@dataclass
class QueryResult:
    """The outcome of :func:`QueryOnce`.

    ``reply`` is the answer with the highest serial (the first received
    among equals), from ``server``; ``replies`` lists every checked answer
    as ((address, port), reply); ``expected`` is the number of daemons
    asked and ``quorum`` a majority of them.
    """
    reply: ConfdReply | None
    server: Peer | None
    replies: list[tuple[Peer, ConfdReply]]
    expected: int
    quorum: int

    @property
    def answered(self) -> int:
        """How many daemons answered."""
        return len({peer for peer, _ in self.replies})

    @property
    def enough(self) -> bool:
        """Whether a majority of the daemons asked answered."""
        return self.answered >= self.quorum

    @property
    def complete(self) -> bool:
        """Whether every daemon asked answered."""
        return self.answered >= self.expected


def BestReply(replies: Sequence[tuple[Peer, ConfdReply]]
              ) -> tuple[Peer | None, ConfdReply | None]:
    """The (peer, reply) with the highest serial; the first among equals."""
    best: tuple[Peer | None, ConfdReply | None] = (None, None)
    for peer, reply in replies:
        if best[1] is None or reply.serial > best[1].serial:
            best = (peer, reply)
    return best


def QueryOnce(hmac_key: str | bytes, peers: Iterable[Any], req_type: int,
              query: Any = None, timeout: float = 2.0,
              coverage: int | None = 0, port: int | None = None,
              client: ConfdClient | None = None,
              logger: logging.Logger | None = None) -> QueryResult:
    """Send one query and wait for the answers (blocking).

    Waits until every daemon asked answered or ``timeout`` seconds passed.
    ``coverage`` defaults to all peers. A ``client`` made earlier with a
    :class:`StoreResultCallback` (see :func:`MakeClient`) may be reused
    across calls; it saves a socket per query.
    """
    own = client is None
    if client is None:
        client = MakeClient(hmac_key, peers, port=port, logger=logger)
    store = client._callback
    if not isinstance(store, StoreResultCallback):
        raise errors.ConfdClientError("QueryOnce needs a client made by"
                                      " MakeClient")
    store.Clear()
    try:
        request = ConfdClientRequest(type=req_type, query=query)
        client.SendRequest(request, coverage=coverage)
        _, asked, quorum = client.WaitForReply(request.rsalt, timeout)
        client.CancelRequest(request.rsalt)
        replies = []
        for up in store.GetResponses():
            assert up.server_reply is not None and up.server_ip is not None
            assert up.server_port is not None
            replies.append(((up.server_ip, up.server_port), up.server_reply))
        server, best = BestReply(replies)
        return QueryResult(reply=best, server=server, replies=replies,
                           expected=asked, quorum=quorum)
    finally:
        store.Clear()
        if own:
            client.Close()


def MakeClient(hmac_key: str | bytes, peers: Iterable[Any],
               port: int | None = None,
               logger: logging.Logger | None = None) -> ConfdClient:
    """A client storing its answers, for repeated :func:`QueryOnce` calls."""
    return ConfdClient(hmac_key, peers, StoreResultCallback(), port=port,
                       logger=logger)
