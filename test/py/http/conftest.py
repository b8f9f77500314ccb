"""Fixtures for tests that run real node daemons (see nodedhelpers.py)."""

import os
import sys

# With --import-mode=importlib test/py is not on sys.path by itself
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nodedhelpers import cluster_crypto, start_noded  # noqa: E402,F401
