"""Fixtures for tests that run real node daemons (see nodedhelpers.py)."""

import os
import sys

# With --import-mode=importlib test/py is not on sys.path by itself
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nodedhelpers import cluster_crypto, start_noded  # noqa: E402,F401

import pytest  # noqa: E402

from ganeti import pathutils  # noqa: E402

NODE_NAME = "node1.example.com"


@pytest.fixture
def node_root(tmp_path):
    """Make this process a virtual node with its own root directory."""
    root = tmp_path / NODE_NAME
    for sub in ("var/lib/ganeti/rapi", "var/lib/ganeti/queue", "var/run/ganeti", "var/lock",
                "var/log/ganeti", "etc/ganeti"):
        (root / sub).mkdir(parents=True)
    pathutils._SetRoot(str(root), NODE_NAME)
    yield str(root)
    pathutils.Reload()
