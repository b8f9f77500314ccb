"""daemon_util: RAPI's listen address and the node daemon's extra arguments
in a virtual cluster (paths follow the environment, so each case runs in a
child interpreter)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from ganeti import constants

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _Py(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def _Env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GANETI_ROOTDIR", "GANETI_HOSTNAME", "GANETI_NODED_ARGS")}
    env["PYTHONPATH"] = os.path.join(REPO, "build", "pylib")
    env.update(extra)
    return env


_CODE = ("from ganeti import daemon_util as d;"
         "print(d.GetListenArgs('ganeti-rapi'), d.DefaultExtraArgs('ganeti-noded'),"
         " d.DefaultExtraArgs('ganeti-rapi'))")


@pytest.fixture
def node_root():
    base = tempfile.mkdtemp(prefix="gv", dir="/tmp")
    root = os.path.join(base, "n1.vc.test")
    data = os.path.join(root, constants.DEFAULT_DATA_DIR.lstrip("/"))
    os.makedirs(data)
    with open(os.path.join(data, "ssconf_node_primary_ips"), "w",
              encoding="utf-8") as fd:
        fd.write("n1.vc.test 127.0.9.1\nn2.vc.test 127.0.9.2\n")
    yield root
    shutil.rmtree(base, ignore_errors=True)


def test_virtual_node(node_root):
    proc = _Py(_CODE, _Env(GANETI_ROOTDIR=node_root, GANETI_HOSTNAME="n1.vc.test"))
    assert proc.stdout.strip() == \
        "['-b', '127.0.9.1', '-p', '5080'] ['--no-mlock'] []", proc.stderr
    # Not in ssconf: the daemon's defaults
    other = os.path.join(os.path.dirname(node_root), "n9.vc.test")
    shutil.copytree(node_root, other)
    proc = _Py(_CODE, _Env(GANETI_ROOTDIR=other, GANETI_HOSTNAME="n9.vc.test"))
    assert proc.stdout.strip() == "[] ['--no-mlock'] []", proc.stderr


def test_env_args_and_real_node(node_root):
    proc = _Py(_CODE, _Env(GANETI_ROOTDIR=node_root, GANETI_HOSTNAME="n1.vc.test",
                           GANETI_NODED_ARGS="--no-mlock -d"))
    assert proc.stdout.strip().endswith("['--no-mlock', '-d'] []"), proc.stderr
    proc = _Py(_CODE, _Env())
    assert proc.stdout.strip() == "[] [] []", proc.stderr
    proc = _Py(_CODE, _Env(GANETI_NODED_ARGS="-d"))
    assert proc.stdout.strip() == "[] ['-d'] []", proc.stderr
