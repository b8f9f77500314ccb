"""Tests for ganeti.utils.misc and for the utils package's exports."""

import os
import re
import uuid

from ganeti import utils
from ganeti.utils import (algo, filelock, io, misc, net, process, retry,
                          security, text)

_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}"
                      r"-[0-9a-f]{12}")


def test_new_uuid():
    values = {utils.NewUUID() for _ in range(50)}
    assert len(values) == 50
    for value in values:
        assert _UUID_RE.fullmatch(value)
        assert uuid.UUID(value).version == 4


def test_get_mounts(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "proc /proc proc rw,nosuid 0 0\n"
        "/dev/sda1 /mnt/with\\040space ext4 rw 0 0\n"
        "\n"
        "broken line\n"
        "tmpfs /run tmpfs rw,mode=755 0 0\n")
    assert utils.GetMounts(str(mounts)) == [
        ("proc", "/proc", "proc", "rw,nosuid"),
        ("/dev/sda1", "/mnt/with space", "ext4", "rw"),
        ("tmpfs", "/run", "tmpfs", "rw,mode=755"),
    ]


def test_get_mounts_real():
    if not os.path.exists("/proc/mounts"):  # pragma: no cover
        return
    assert any(mountpoint == "/" for _, mountpoint, _, _ in utils.GetMounts())


def test_is_executable(tmp_path):
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    assert not utils.IsExecutable(str(script))
    script.chmod(0o755)
    assert utils.IsExecutable(str(script))
    assert not utils.IsExecutable(str(tmp_path))
    assert not utils.IsExecutable(str(tmp_path / "missing"))


def test_package_exports_every_submodule_name():
    for module in (algo, filelock, io, misc, net, process, retry, security,
                   text):
        for name in module.__all__:
            assert getattr(utils, name) is getattr(module, name), name


def test_submodules_list_their_public_functions():
    for module in (algo, filelock, io, misc, net, process, retry, security,
                   text):
        public = {name for name, value in vars(module).items()
                  if name[:1].isupper() and callable(value)
                  and getattr(value, "__module__", None) == module.__name__}
        assert public <= set(module.__all__), module.__name__
