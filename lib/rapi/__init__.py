"""The remote API (RAPI): Ganeti's REST interface, version 2.

- :mod:`.auth`: the users file and HTTP basic authentication
- :mod:`.baserlib`: the resource base class, opcode building, error mapping
- :mod:`.rlib2_cluster`, :mod:`.rlib2_nodes`, :mod:`.rlib2_instances`,
  :mod:`.rlib2_groups`, :mod:`.rlib2_jobs`: the resources
- :mod:`.resources`: THE table of resources (path pattern -> class)
- :mod:`.server`: the HTTPS server of ganeti-rapi (threads, keep-alive)
- :mod:`.client`: :class:`~ganeti.rapi.client.GanetiRapiClient`
"""

#: The user option allowing changes (and reads)
RAPI_ACCESS_WRITE = "write"
#: The user option allowing reads of protected resources
RAPI_ACCESS_READ = "read"
RAPI_ACCESS_ALL = frozenset([RAPI_ACCESS_WRITE, RAPI_ACCESS_READ])

#: The HTTP authentication realm; part of the {HA1} password hashes
RAPI_REALM = "Ganeti Remote API"
