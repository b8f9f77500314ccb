"""The libraries behind the administrator's tools in ``tools/``.

Each launcher in ``tools/`` is a thin script calling its module's ``Main``
(``ensure-users``: :mod:`ganeti.tools.ensure_users`, ``ensure-dirs``:
:mod:`ganeti.tools.ensure_dirs`); the modules also serve other callers
(daemon-util and cluster verify run ensure-dirs' checks directly).
"""
