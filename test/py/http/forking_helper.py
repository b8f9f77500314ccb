"""Runs a ForkingHttpServer with a test handler (for test_forking.py).

Usage: ``forking_helper.py DIRECTORY [JSON keyword arguments of the
server]``. Serves plain HTTP on 127.0.0.1 and a free port, written with
the pid to ``DIRECTORY/ready`` once serving. Paths:

- ``/pid``: the pid of the process that handles the request;
- ``/exit``, ``/abort``, ``/segv``: the handling process exits with code
  3, aborts (SIGABRT) or dereferences a null pointer (SIGSEGV);
- ``/memory``: raises MemoryError;
- ``/block``: creates ``DIRECTORY/started.<pid>``, then waits until the
  FIFO ``DIRECTORY/release`` is opened for writing;
- anything else: the body, reversed.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import sys

from ganeti.http import forking
from ganeti.http.message import HttpResponse, HttpServerHandler, ServerOptions


class _Handler(HttpServerHandler):
    def __init__(self, directory: str) -> None:
        self.directory = directory

    def HandleRequest(self, req):
        path = req.path
        if path == "/pid":
            return HttpResponse(body=str(os.getpid()).encode())
        if path == "/exit":
            os._exit(3)
        if path == "/abort":
            os.abort()
        if path == "/segv":
            ctypes.string_at(0)
        if path == "/memory":
            raise MemoryError("test")
        if path == "/block":
            marker = os.path.join(self.directory, f"started.{os.getpid()}")
            with open(marker, "w", encoding="ascii"):
                pass
            with open(os.path.join(self.directory, "release"), "rb"):
                pass
            return HttpResponse(body=b"released")
        return HttpResponse(body=req.body[::-1])


def Main() -> int:
    directory = sys.argv[1]
    kwargs = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    opts = ServerOptions(request_timeout=kwargs.pop("request_timeout", 10.0))
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG,
                        format="%(process)d %(levelname)s %(message)s")
    os.mkfifo(os.path.join(directory, "release"))
    server = forking.ForkingHttpServer(_Handler(directory), None, opts, **kwargs)
    address, port = server.Bind("127.0.0.1", 0)
    ready = os.path.join(directory, "ready")

    def _Ready() -> None:
        with open(ready + ".tmp", "w", encoding="ascii") as fd:
            fd.write(f"{address} {port} {os.getpid()}\n")
        os.rename(ready + ".tmp", ready)

    server.Serve(_Ready)
    logging.info("stopped (forked %d, refused %d, evicted %d)", server.forked,
                 server.refused, server.evicted)
    return 0


if __name__ == "__main__":
    sys.exit(Main())
