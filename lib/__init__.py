"""A Ganeti-style cluster virtualization manager.

The package is installed as ``ganeti``; its sources live in ``lib/``.
"""

__version__ = "3.0.0"
