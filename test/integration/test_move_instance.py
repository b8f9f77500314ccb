"""tools/move-instance between two virtual clusters on this machine (each on
its own 127.0.k net, each with its ganeti-rapi): a file instance moves with
its data checked byte for byte; a RAPI certificate that does not match the
CA file and clusters that do not share the domain secret are refused with
nothing imported and the source untouched; a move whose receiving
ganeti-impexpd is killed fails, removes the partial destination instance
and leaves the source instance running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import REPO, VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import constants  # noqa: E402
from ganeti.utils import x509  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

OS = "noop+default"
SECRET = "5ec7e7" * 10
DEADLINE = 120.0


def _Env(vc: VirtualCluster) -> dict[str, str]:
    result = subprocess.run(["sh", "-c", f". {vc.directory}/env && env -0"],
                            capture_output=True, timeout=30, check=True)
    return dict(item.split("=", 1) for item in
                result.stdout.decode().split("\0") if "=" in item)


class Side:
    """One cluster as move-instance sees it."""

    def __init__(self, vc: VirtualCluster, tmp: Path, label: str) -> None:
        env = _Env(vc)
        self.vc = vc
        self.host, self.port, self.user = env["RAPI_HOST"], env["RAPI_PORT"], env["RAPI_USER"]
        self.password_file = str(Path(vc.directory) / "rapi-password")
        # Only the certificate of rapi.pem (not its key) goes to the tool
        pem = vc.path(vc.master(), constants.DEFAULT_DATA_DIR + "/"
                      + constants.RAPI_PEM_NAME).read_bytes()
        self.ca_file = str(tmp / f"{label}-ca.pem")
        Path(self.ca_file).write_bytes(x509.ExtractX509Certificate(pem)[1])

    def SetSecret(self, secret_file: str) -> None:
        self.vc.run("gnt-cluster", "renew-crypto", "-f",
                    f"--cluster-domain-secret={secret_file}")


@pytest.fixture(scope="module")
def clusters():
    with tempfile.TemporaryDirectory(prefix="mi") as tmp, \
            virtual_cluster(nodes=2) as src_vc, virtual_cluster(nodes=1) as dest_vc:
        secret = Path(tmp) / "ganeti.cds"
        secret.write_text(SECRET + "\n")
        src, dest = Side(src_vc, Path(tmp), "src"), Side(dest_vc, Path(tmp), "dest")
        for side in (src, dest):
            side.SetSecret(str(secret))
        yield src, dest, Path(tmp)


def _Tool(src: Side, dest: Side, *args: str, ca_file: str | None = None,
          popen: bool = False):
    cmd = [src.vc.python, str(REPO / "tools" / "move-instance"),
           "--src-ca-file", ca_file or src.ca_file, "--dest-ca-file", dest.ca_file,
           "--src-rapi-port", src.port, "--dest-rapi-port", dest.port,
           "--src-username", src.user, "--src-password-file", src.password_file,
           "--dest-username", dest.user, "--dest-password-file", dest.password_file,
           "--ignore-ipolicy", "-v", *args]
    env = dict(os.environ, PYTHONPATH=str(REPO / "build" / "pylib"))
    if popen:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600,
                          check=False)


def _Add(vc: VirtualCluster, name: str, size: str) -> None:
    vc.run("gnt-instance", "add", "-t", "file", "-o", OS, "-n", vc.names[0],
           "--no-name-check", "--no-ip-check", "--ignore-ipolicy",
           "--disk", f"0:size={size}", name)


def _DiskPath(vc: VirtualCluster, name: str) -> str:
    out = vc.run("gnt-instance", "activate-disks", name).stdout
    (line,) = out.splitlines()
    return line.strip().split(":", 2)[2]


def _Instances(vc: VirtualCluster) -> dict[str, list[str]]:
    out = vc.run("gnt-instance", "list", "--no-headers", "--separator=|",
                 "-o", "name,admin_state,oper_state").stdout
    return {line.split("|")[0]: line.split("|")[1:] for line in out.splitlines()}


def _Keys(vc: VirtualCluster) -> set[str]:
    """The per-move X509 keys on the nodes."""
    return {f"{node}/{key.name}" for node in vc.names
            for key in (vc.path(node, "/var/run/ganeti/crypto").glob("x509-*"))}


def _NoTransferLeft(vc: VirtualCluster, keys: set[str] | None = None) -> None:
    """No transfer daemon left, nor a per-move key but ``keys``."""
    for node in vc.names:
        path = vc.path(node, "/var/run/ganeti/import-export")
        assert not path.exists() or not list(path.iterdir()), node
    assert _Keys(vc) == (keys or set())


def test_domain_secret_distributed(clusters):
    src, _, _ = clusters
    for node in src.vc.names:
        secret = src.vc.path(node, constants.DEFAULT_DATA_DIR + "/cluster-domain-secret")
        assert secret.read_text().strip() == SECRET


def test_move(clusters):
    src, dest, _ = clusters
    name = "moved.vcluster.test"
    keys = _Keys(src.vc)
    _Add(src.vc, name, "48M")
    path = _DiskPath(src.vc, name)
    payload = os.urandom(1 << 20)
    with open(path, "r+b") as fd:
        fd.write(payload)
        fd.seek(40 << 20)
        fd.write(payload[::-1])
    with open(path, "rb") as fd:
        source_data = fd.read()
    result = _Tool(src, dest, "--dest-primary-node", dest.vc.names[0], "--compress",
                   "gzip", src.host, dest.host, name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{name}: moved to" in result.stdout
    assert "is now receiving data" in result.stdout  # the jobs' messages (-v)
    assert name not in _Instances(src.vc)
    assert _Instances(dest.vc)[name] == ["up", "Y"]
    with open(_DiskPath(dest.vc, name), "rb") as fd:
        assert fd.read() == source_data
    _NoTransferLeft(src.vc, keys)
    _NoTransferLeft(dest.vc)
    dest.vc.run("gnt-instance", "remove", "-f", name)


def test_wrong_rapi_certificate_refused(clusters):
    src, dest, tmp = clusters
    other = tmp / "other-ca.pem"
    other.write_bytes(x509.GenerateSelfSignedX509Cert("other", 3600, 1)[1])
    result = _Tool(src, dest, src.host, dest.host, "nothing.vcluster.test",
                   ca_file=str(other))
    assert result.returncode == constants.EXIT_FAILURE
    assert "RAPI certificate of the source cluster" in result.stderr
    assert "does not match the given CA" in result.stderr


def test_different_domain_secrets_refused(clusters):
    src, dest, tmp = clusters
    name = "refused.vcluster.test"
    _Add(src.vc, name, "8M")
    other = tmp / "other.cds"
    other.write_text("0ther" * 12 + "\n")
    dest.SetSecret(str(other))
    try:
        result = _Tool(src, dest, "--dest-primary-node", dest.vc.names[0], src.host,
                       dest.host, name)
    finally:
        dest.SetSecret(str(tmp / "ganeti.cds"))
    assert result.returncode == constants.EXIT_FAILURE
    assert "don't share the same domain secret" in result.stderr, result.stderr
    assert name not in _Instances(dest.vc)
    _NoTransferLeft(dest.vc)
    assert _Instances(src.vc)[name] == ["up", "Y"]
    src.vc.run("gnt-instance", "remove", "-f", name)


def _FindConnectedImport(vc: VirtualCluster, proc: subprocess.Popen) -> int:
    """The pid of the destination's importer once it receives data."""
    directory = vc.path(vc.names[0], "/var/run/ganeti/import-export")
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline and proc.poll() is None:
        for daemon in directory.glob("import-*") if directory.exists() else []:
            try:
                status = json.loads((daemon / "status").read_text())
                pid = int((daemon / "pid").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            if status.get("connected") and status.get("exit_status") is None:
                return pid
        time.sleep(0.02)
    raise AssertionError(f"no connected importer (tool: {proc.poll()})")


def test_interrupted_move(clusters):
    src, dest, _ = clusters
    name = "interrupted.vcluster.test"
    keys = _Keys(src.vc)
    # Big enough (sparse, read in full) for the transfer to last a moment
    _Add(src.vc, name, "768M")
    proc = _Tool(src, dest, "--dest-primary-node", dest.vc.names[0], src.host,
                 dest.host, name, popen=True)
    try:
        os.kill(_FindConnectedImport(dest.vc, proc), signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == constants.EXIT_FAILURE, stdout + stderr
    assert "the import failed" in stderr and "the source instance was kept" in stderr
    assert name not in _Instances(dest.vc)
    storage = dest.vc.path(dest.vc.names[0], "/srv/ganeti/file-storage")
    assert not list(storage.glob(f"{name}*")), list(storage.iterdir())
    assert _Instances(src.vc)[name] == ["up", "Y"]
    _NoTransferLeft(src.vc, keys)
    _NoTransferLeft(dest.vc)
    src.vc.run("gnt-instance", "remove", "-f", name)
