"""Fixtures for the locking tests; the helpers live in lockhelpers.py."""

from __future__ import annotations

import os
import sys

import pytest

# Test modules import lockhelpers; with --import-mode=importlib this
# directory is not on sys.path by itself.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lockhelpers import ThreadRunner  # noqa: E402


@pytest.fixture
def runner():
    threads = ThreadRunner()
    yield threads
    threads.join_all()
