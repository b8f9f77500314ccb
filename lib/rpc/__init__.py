"""Node RPC: the master's calls to the node daemons.

- :mod:`ganeti.rpc.defs`: the one table of calls (names, arguments and how
  each is encoded, timeout class, node-side handler, result post-processing);
- :mod:`ganeti.rpc.encoding`: argument encodings used by both ends;
- :mod:`ganeti.rpc.client`: the parallel HTTPS transport (pycurl) and
  :class:`RpcResult`;
- :mod:`ganeti.rpc.node`: :class:`RpcRunner`, whose ``call_*`` methods are
  built from the table, and the node address resolvers;
- :mod:`ganeti.rpc.dispatch`: the node side, which decodes a request and
  runs its handler, looked up in the same table.

Wire format: ``PUT /<call name>`` with the JSON list of arguments as body;
the answer is the JSON list ``[success, payload]``, where a failed call's
payload is its error message.
"""
