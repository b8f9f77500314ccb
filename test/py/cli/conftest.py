"""Fixtures for the CLI tests; the fake luxi client lives in clihelpers.py."""

from __future__ import annotations

import os
import sys

import pytest

# Test modules import clihelpers; with --import-mode=importlib this
# directory is not on sys.path by itself.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from clihelpers import FakeClient  # noqa: E402

from ganeti import cli  # noqa: E402
from ganeti.cli import base  # noqa: E402


@pytest.fixture
def fake_client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    """A FakeClient returned by every cli.GetClient() call."""
    client = FakeClient()

    def _Get(address: str | None = None) -> FakeClient:
        return client

    monkeypatch.setattr(base, "GetClient", _Get)
    monkeypatch.setattr(cli, "GetClient", _Get)
    return client
