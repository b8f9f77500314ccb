"""Fixtures for the job queue tests; the helpers live in jqhelpers.py."""

from __future__ import annotations

import os
import sys

import pytest

# With --import-mode=importlib this directory is not on sys.path by itself
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from jqhelpers import QueueEnv  # noqa: E402


@pytest.fixture
def env(tmp_path):
    made = QueueEnv(tmp_path)
    yield made
    made.close()
