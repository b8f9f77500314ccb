"""The gnt-* command line tools: one module per tool with its commands table.

Each ``gnt_<name>.py`` defines ``commands`` (see :mod:`ganeti.cli.command`)
and ``Main()``; the launcher ``scripts/gnt-<name>`` only calls ``Main``.
"""
