"""The node side of RPC: find a call in the table, decode, run, answer.

Protocol errors (unknown call, a body that is not a JSON list, the wrong
number of arguments, an argument that does not decode) raise HTTP errors,
since the request never reached a handler. A handler's own failure is a
normal answer, ``[False, message]``, with status 200.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any
from collections.abc import Callable

from ganeti import errors, http, serializer
from ganeti.backend import RPCFail
from ganeti.rpc import defs, encoding


def ResolveHandler(dotted: str) -> Callable[..., Any]:
    """Import and return the function named ``module.function``."""
    module_name, _, func_name = dotted.rpartition(".")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, func_name)
    except AttributeError:
        raise errors.ProgrammerError(f"RPC handler {dotted} does not exist") from None


class RpcDispatcher:
    """Runs RPC calls by name, from the call table.

    ``quit_fn`` is called when a handler asks the daemon to shut down (by
    raising errors.QuitGanetiException).
    """

    def __init__(self, calls: dict[str, defs.RpcCall] | None = None,
                 quit_fn: Callable[[], None] | None = None):
        self._calls = defs.CALLS if calls is None else calls
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._quit_fn = quit_fn

    def LoadAll(self) -> None:
        """Import every handler now.

        The daemon does this at start, so that no call pays for importing
        its handler and a handler that cannot be imported shows at once.
        """
        for call in self._calls.values():
            self._GetHandler(call)

    def GetCall(self, name: str) -> defs.RpcCall | None:
        """Return the declaration of call ``name``, or None."""
        return self._calls.get(name)

    def _GetHandler(self, call: defs.RpcCall) -> Callable[..., Any]:
        fn = self._handlers.get(call.name)
        if fn is None:
            fn = self._handlers[call.name] = ResolveHandler(call.handler)
        return fn

    def DecodeArgs(self, call: defs.RpcCall, body: bytes) -> list[Any]:
        """Parse and decode a request body; raise HttpBadRequest if invalid."""
        try:
            args = serializer.LoadJson(body)
        except errors.ParseError as err:
            raise http.HttpBadRequest(f"Invalid request body for '{call.name}':"
                                      f" {err}") from err
        if not isinstance(args, list):
            raise http.HttpBadRequest(
                f"Request body for '{call.name}' must be a JSON list of"
                f" arguments, got {type(args).__name__}")
        if len(args) != len(call.args):
            raise http.HttpBadRequest(
                f"RPC call '{call.name}' takes {len(call.args)} argument(s)"
                f" ({', '.join(call.arg_names) or 'none'}), got {len(args)}")
        decoded = []
        for argdef, value in zip(call.args, args):
            try:
                decoded.append(encoding.Decode(argdef.kind, value))
            except errors.ParameterError as err:
                raise http.HttpBadRequest(
                    f"Invalid argument '{argdef.name}' for '{call.name}':"
                    f" {err}") from err
        return decoded

    def Run(self, call: defs.RpcCall, args: list[Any]) -> Any:
        """Run a call's handler; return the ``[success, payload]`` answer."""
        fn = self._GetHandler(call)
        try:
            return [True, fn(*args)]
        except RPCFail as err:
            return [False, str(err)]
        except errors.QuitGanetiException as err:
            logging.info("Shutting down the node daemon, arguments: %s", err.args)
            if self._quit_fn:
                self._quit_fn()
            return list(err.args)
        except Exception as err:
            logging.exception("Error in RPC call '%s'", call.name)
            return [False, f"Error while executing backend function: {err}"]

    def Dispatch(self, name: str, body: bytes) -> bytes:
        """Handle one request for call ``name``; return the JSON answer.

        Raises HttpNotFound for an unknown call and HttpBadRequest for a
        malformed body.
        """
        call = self._calls.get(name)
        if call is None:
            raise http.HttpNotFound(f"Unknown RPC call '{name}'")
        result = self.Run(call, self.DecodeArgs(call, body))
        try:
            return serializer.DumpJsonBytes(result)
        except (TypeError, ValueError) as err:
            logging.error("Result of RPC call '%s' cannot be encoded: %s", name, err)
            return serializer.DumpJsonBytes(
                [False, f"Error while executing backend function: result of"
                        f" '{name}' cannot be encoded as JSON: {err}"])
