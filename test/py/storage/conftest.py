"""A virtual node root for storage tests (paths come from pathutils)."""

import pytest

from ganeti import pathutils

NODE_NAME = "node1.example.com"


@pytest.fixture
def node_root(tmp_path):
    """Make this process a virtual node; create its file storage dirs."""
    root = tmp_path / NODE_NAME
    for sub in ("var/lib/ganeti", "var/run/ganeti", "var/lock", "etc/ganeti",
                "srv/ganeti/file-storage", "srv/ganeti/shared-file-storage"):
        (root / sub).mkdir(parents=True)
    pathutils._SetRoot(str(root), NODE_NAME)
    yield str(root)
    pathutils.Reload()
