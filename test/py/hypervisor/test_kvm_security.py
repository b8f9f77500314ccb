"""ganeti.hypervisor.hv_kvm.security: users, uid pool, chroot, VNC password.

Everything runs on real files: the uid pool's lock files and the chroot
directories live in temporary directories. Switching QEMU to another user
needs root; the tests that check the preparation logic alone pretend to be
root (``as_root``); those that start QEMU under the prepared user need it
for real (``needs_root``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ganeti import constants as C
from ganeti import errors, pathutils, uidpool
from ganeti.hypervisor.hv_kvm import cmdline, monitor, security

QEMU = shutil.which("qemu-system-x86_64")
needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="-runas and -chroot need root")
needs_qemu = pytest.mark.skipif(QEMU is None,
                                reason="qemu-system-x86_64 is not installed")
UUID = "0b3d2a1c-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


def _FreeUids(count: int) -> list[int]:
    used = uidpool.GetUsedUids()
    return [uid for uid in range(3_900_002_000, 3_900_003_000) if uid not in used][:count]


@pytest.fixture
def rundir() -> Iterator[Path]:
    """A short directory (Unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="gsec", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def dirs(rundir) -> dict[str, str]:
    return {"run_dir": str(rundir / "kvm"), "lockdir": str(rundir / "uid-pool")}


@pytest.fixture
def as_root(monkeypatch):
    monkeypatch.setattr(security, "_IsRoot", lambda: True)


# --- security_model ------------------------------------------------------------------

def test_model_none_prepares_nothing(dirs):
    setup = security.PrepareSecurity("inst1", {}, None, **dirs)
    assert (setup.runas, setup.uid, setup.chroot) == (None, None, None)
    setup.Started()
    setup.Cleanup()
    assert not os.path.exists(dirs["lockdir"])


def test_model_user(dirs, as_root):
    hvp = {C.HV_SECURITY_MODEL: C.HT_SM_USER, C.HV_SECURITY_DOMAIN: "nobody"}
    setup = security.PrepareSecurity("inst1", hvp, None, **dirs)
    assert setup.runas == "nobody"
    assert setup.uid == pwd.getpwnam("nobody").pw_uid
    assert setup.chroot is None


def test_model_user_needs_an_existing_user(dirs, as_root):
    hvp = {C.HV_SECURITY_MODEL: C.HT_SM_USER, C.HV_SECURITY_DOMAIN: "no-such-user-x"}
    with pytest.raises(errors.HypervisorError,
                       match="security_domain user 'no-such-user-x' does not exist"):
        security.PrepareSecurity("inst1", hvp, None, **dirs)
    with pytest.raises(errors.HypervisorError, match="needs a security_domain"):
        security.PrepareSecurity("inst1", {C.HV_SECURITY_MODEL: C.HT_SM_USER}, None,
                                 **dirs)


def test_switching_users_needs_root(dirs, monkeypatch):
    monkeypatch.setattr(security, "_IsRoot", lambda: False)
    for hvp in ({C.HV_SECURITY_MODEL: C.HT_SM_USER, C.HV_SECURITY_DOMAIN: "nobody"},
                {C.HV_SECURITY_MODEL: C.HT_SM_POOL},
                {C.HV_KVM_USE_CHROOT: True}):
        with pytest.raises(errors.HypervisorError, match="needs the node daemon to run"
                                                         " as root"):
            security.PrepareSecurity("inst1", hvp, _FreeUids(1), **dirs)
    # Nothing was left reserved or created
    assert uidpool.GetReservedUids(dirs["lockdir"]) == {}
    assert not os.path.exists(security.ChrootDir("inst1", dirs["run_dir"]))


def test_model_pool_reserves_a_uid_until_release(dirs, as_root):
    uids = _FreeUids(2)
    hvp = {C.HV_SECURITY_MODEL: C.HT_SM_POOL}
    setup = security.PrepareSecurity("inst1", hvp, uids, **dirs)
    assert setup.uid in uids
    # No user has such a uid: QEMU gets uid:gid
    assert setup.runas == f"{setup.uid}:{setup.uid}"
    assert uidpool.GetReservedUids(dirs["lockdir"]) == {setup.uid: "inst1"}
    # Still locked: a second start cannot take it, and gets the other uid
    other = security.PrepareSecurity("inst2", hvp, uids, **dirs)
    assert {setup.uid, other.uid} == set(uids)
    with pytest.raises(errors.HypervisorError, match="No free uid in the pool"):
        security.PrepareSecurity("inst3", hvp, uids, **dirs)
    other.Cleanup()  # a failed start gives its uid back at once
    assert uidpool.GetReservedUids(dirs["lockdir"]) == {setup.uid: "inst1"}
    setup.Started()
    assert security.GetInstanceUid("inst1", dirs["lockdir"]) == setup.uid
    security.ReleaseSecurity("inst1", hvp, **dirs)
    assert security.GetInstanceUid("inst1", dirs["lockdir"]) is None
    security.ReleaseSecurity("inst1", hvp, **dirs)  # twice: nothing to do


def test_model_pool_errors(dirs, as_root):
    hvp = {C.HV_SECURITY_MODEL: C.HT_SM_POOL}
    with pytest.raises(errors.HypervisorError, match="the cluster's is empty"):
        security.PrepareSecurity("inst1", hvp, [], **dirs)
    # Uid 0 always has a process (init)
    with pytest.raises(errors.HypervisorError, match="No free uid in the pool"):
        security.PrepareSecurity("inst1", hvp, [0], **dirs)


def test_model_pool_reads_the_pool_from_ssconf(dirs, as_root, tmp_path, monkeypatch):
    monkeypatch.setattr(pathutils, "DATA_DIR", str(tmp_path))
    hvp = {C.HV_SECURITY_MODEL: C.HT_SM_POOL}
    with pytest.raises(errors.HypervisorError, match="Cannot read the cluster's uid pool"):
        security.PrepareSecurity("inst1", hvp, None, **dirs)
    uid = _FreeUids(1)[0]
    (tmp_path / f"ssconf_{C.SS_UID_POOL}").write_text(f"0\n{uid}\n")
    setup = security.PrepareSecurity("inst1", hvp, None, **dirs)
    assert setup.uid == uid
    setup.Cleanup()
    # ssconf's text given by the caller
    setup = security.PrepareSecurity("inst1", hvp, f"0\n{uid}-{uid}\n", **dirs)
    assert setup.uid == uid
    setup.Cleanup()
    with pytest.raises(errors.HypervisorError, match="Invalid user-id 'x'"):
        security.PrepareSecurity("inst1", hvp, "x", **dirs)
    (tmp_path / f"ssconf_{C.SS_UID_POOL}").write_text("")
    with pytest.raises(errors.HypervisorError, match="is empty"):
        security.PrepareSecurity("inst1", hvp, None, **dirs)


def test_runas_prefers_the_user_name():
    assert security.RunasForUid(0) == "root"
    assert security.RunasForUid(3_999_999_999) == "3999999999:3999999999"


# --- use_chroot ----------------------------------------------------------------------

def test_chroot_is_created_private_and_empty(dirs, as_root):
    setup = security.PrepareSecurity("inst1", {C.HV_KVM_USE_CHROOT: True}, None, **dirs)
    # The directory the command line's RuntimeFiles names
    assert setup.chroot == cmdline.RuntimeFiles.ForInstance("inst1", dirs["run_dir"]).chroot
    info = os.stat(setup.chroot)
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
    assert info.st_uid == os.geteuid()
    assert os.listdir(setup.chroot) == []
    setup.Cleanup()
    assert not os.path.exists(setup.chroot)


def test_chroot_must_be_empty_and_is_quarantined_at_stop(dirs, as_root):
    hvp = {C.HV_KVM_USE_CHROOT: True}
    path = security.ChrootDir("inst1", dirs["run_dir"])
    os.makedirs(path)
    os.chmod(path, 0o777)
    setup = security.PrepareSecurity("inst1", hvp, None, **dirs)  # empty: reused
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    # Something wrote into it while the instance ran
    Path(path, "core").write_text("x")
    with pytest.raises(errors.HypervisorError, match=f"chroot directory {path} is not empty"):
        security.PrepareSecurity("inst1", hvp, None, **dirs)
    security.ReleaseSecurity("inst1", hvp, **dirs)
    assert not os.path.exists(path)
    quarantined = os.listdir(security.QuarantineDir(dirs["run_dir"]))
    assert len(quarantined) == 1 and quarantined[0].startswith("inst1-")
    # ... so the next start works
    setup = security.PrepareSecurity("inst1", hvp, None, **dirs)
    assert os.listdir(setup.chroot) == []
    # A second quarantine on the same second gets its own name
    Path(path, "core").write_text("x")
    security.ReleaseSecurity("inst1", hvp, **dirs)
    Path(path).mkdir()
    Path(path, "core").write_text("x")
    security.ReleaseSecurity("inst1", hvp, **dirs)
    assert len(os.listdir(security.QuarantineDir(dirs["run_dir"]))) == 3


def test_chroot_path_taken_by_a_file(dirs, as_root):
    path = security.ChrootDir("inst1", dirs["run_dir"])
    os.makedirs(os.path.dirname(path))
    Path(path).write_text("")
    with pytest.raises(errors.HypervisorError, match="exists and is not a directory"):
        security.PrepareSecurity("inst1", {C.HV_KVM_USE_CHROOT: True}, None, **dirs)


def test_a_failed_chroot_gives_the_pool_uid_back(dirs, as_root):
    path = security.ChrootDir("inst1", dirs["run_dir"])
    os.makedirs(path)
    Path(path, "leftover").write_text("")
    hvp = {C.HV_SECURITY_MODEL: C.HT_SM_POOL, C.HV_KVM_USE_CHROOT: True}
    with pytest.raises(errors.HypervisorError, match="not empty"):
        security.PrepareSecurity("inst1", hvp, _FreeUids(1), **dirs)
    assert uidpool.GetReservedUids(dirs["lockdir"]) == {}
    assert os.listdir(path) == ["leftover"]  # not ours to move at start


def test_release_after_a_restart_uses_what_is_on_disk(dirs, as_root):
    """ReleaseSecurity needs neither the SecuritySetup nor today's hvparams."""
    hvp = {C.HV_SECURITY_MODEL: C.HT_SM_POOL, C.HV_KVM_USE_CHROOT: True}
    setup = security.PrepareSecurity("inst1", hvp, _FreeUids(1), **dirs)
    setup.Started()
    del setup
    security.ReleaseSecurity("inst1", {}, **dirs)
    assert uidpool.GetReservedUids(dirs["lockdir"]) == {}
    assert not os.path.exists(security.ChrootDir("inst1", dirs["run_dir"]))


# --- Real QEMU under the prepared user -----------------------------------------------

def _StartQemu(rundir: Path, name: str, hvparams: dict, setup: security.SecuritySetup,
               vnc: str | None = None) -> tuple[int, cmdline.RuntimeFiles]:
    files = cmdline.RuntimeFiles(pidfile=str(rundir / f"{name}.pid"),
                                 qmp=str(rundir / f"{name}.qmp"),
                                 serial=str(rundir / f"{name}.serial"),
                                 chroot=setup.chroot)
    hvp = {**C.HVC_DEFAULTS[C.HT_KVM], C.HV_KVM_PATH: QEMU, C.HV_KVM_FLAG: "disabled",
           C.HV_KERNEL_PATH: "", C.HV_BOOT_ORDER: "disk", **hvparams}
    if vnc:
        hvp[C.HV_VNC_BIND_ADDRESS] = vnc
    argv = cmdline.BuildCommandLine(name, UUID, 32, 1, hvp, [], [], files,
                                    runas_user=setup.runas, paused=True)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"QEMU refused {argv}:\n{result.stderr}"
    return int(Path(files.pidfile).read_text()), files


def _Stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as fd:
            if fd.read().split(")")[-1].split()[0] == "Z":
                break
        time.sleep(0.02)


def _Uids(pid: int) -> list[int]:
    with open(f"/proc/{pid}/status") as fd:
        line = next(line for line in fd if line.startswith("Uid:"))
    return [int(field) for field in line.split()[1:]]


@needs_root
@needs_qemu
def test_two_pool_instances_run_under_different_uids_in_their_chroots(rundir, dirs):
    uids = _FreeUids(2)
    hvp = {C.HV_SECURITY_MODEL: C.HT_SM_POOL, C.HV_KVM_USE_CHROOT: True}
    pids = []
    try:
        setups = []
        for name in ("inst1", "inst2"):
            setup = security.PrepareSecurity(name, hvp, uids, **dirs)
            pid, _ = _StartQemu(rundir, name, hvp, setup)
            pids.append(pid)
            setup.Started()
            setups.append(setup)
            assert _Uids(pid) == [setup.uid] * 4
            assert os.readlink(f"/proc/{pid}/root") == setup.chroot
        assert {setup.uid for setup in setups} == set(uids)
        # Both uids are taken by running QEMUs, their locks long released
        with pytest.raises(errors.HypervisorError, match="No free uid in the pool"):
            security.PrepareSecurity("inst3", hvp, uids, **dirs)
        # inst1 stops: its uid goes back
        _Stop(pids[0])
        security.ReleaseSecurity("inst1", hvp, **dirs)
        assert not os.path.exists(setups[0].chroot)
        third = security.PrepareSecurity("inst3", {C.HV_SECURITY_MODEL: C.HT_SM_POOL},
                                         uids, **dirs)
        assert third.uid == setups[0].uid
        third.Cleanup()
    finally:
        for pid in pids:
            _Stop(pid)


@needs_root
@needs_qemu
def test_user_model_runs_qemu_as_the_security_domain(rundir, dirs):
    hvp = {C.HV_SECURITY_MODEL: C.HT_SM_USER, C.HV_SECURITY_DOMAIN: "nobody"}
    setup = security.PrepareSecurity("inst1", hvp, None, **dirs)
    pid, _ = _StartQemu(rundir, "inst1", hvp, setup)
    try:
        assert _Uids(pid) == [pwd.getpwnam("nobody").pw_uid] * 4
    finally:
        _Stop(pid)


# --- VNC password --------------------------------------------------------------------

def test_read_vnc_password(tmp_path):
    assert security.ReadVncPassword({}) is None
    path = tmp_path / "vnc-pw"
    path.write_text("s3cret\n")
    assert security.ReadVncPassword({C.HV_VNC_PASSWORD_FILE: str(path)}) == "s3cret"
    path.write_text(" \n")
    with pytest.raises(errors.HypervisorError, match=f"VNC password file {path} is empty"):
        security.ReadVncPassword({C.HV_VNC_PASSWORD_FILE: str(path)})
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(errors.HypervisorError, match=f"{path} is not UTF-8"):
        security.ReadVncPassword({C.HV_VNC_PASSWORD_FILE: str(path)})
    missing = tmp_path / "missing"
    with pytest.raises(errors.HypervisorError,
                       match=f"Cannot read the VNC password file {missing}: No such file"):
        security.ReadVncPassword({C.HV_VNC_PASSWORD_FILE: str(missing)})


def test_the_cluster_password_file_is_this_nodes_copy(tmp_path, monkeypatch):
    node_copy = tmp_path / "vnc-cluster-password"
    node_copy.write_text("pw\n")
    monkeypatch.setattr(pathutils, "VNC_PASSWORD_FILE", str(node_copy))
    hvp = {C.HV_VNC_PASSWORD_FILE: security.CLUSTER_VNC_PASSWORD_FILE}
    assert security.VncPasswordPath(hvp) == str(node_copy)
    assert security.ReadVncPassword(hvp) == "pw"


def test_ancillary_files_name_the_vnc_password_file(monkeypatch):
    monkeypatch.setattr(pathutils, "VNC_PASSWORD_FILE", "/x/vnc-cluster-password")
    assert security.AncillaryFiles() == (["/x/vnc-cluster-password"],
                                         ["/x/vnc-cluster-password"])


def test_apply_vnc_password_without_a_file_does_nothing():
    class Monitor:
        def SetVncPassword(self, password: str) -> None:
            raise AssertionError("not called")
    assert security.ApplyVncPassword(Monitor(), {}) is False


@needs_qemu
def test_vnc_password_set_over_qmp(rundir):
    password = rundir / "vnc-pw"
    password.write_text("pw123\n")
    hvp = {C.HV_VNC_PASSWORD_FILE: str(password)}
    setup = security.SecuritySetup("inst1")
    pid, files = _StartQemu(rundir, "inst1", hvp, setup, vnc=str(rundir / "vnc.sock"))
    try:
        conn = monitor.QmpConnection(files.qmp)
        conn.Connect()
        with conn:
            assert security.ApplyVncPassword(conn, hvp) is True
            info = conn.Execute("query-vnc")
            assert info["enabled"] is True and info["auth"] == "vnc"
    finally:
        _Stop(pid)


def test_the_vnc_password_file_is_distributed_and_uploadable():
    from types import SimpleNamespace

    from ganeti import config_sync
    from ganeti.backend import files
    cluster = SimpleNamespace(modify_etc_hosts=False, enabled_hypervisors=[C.HT_KVM])
    cfg = SimpleNamespace(GetClusterInfo=lambda: cluster)
    for redist in (False, True):
        wanted = config_sync.ComputeAncillaryFiles(cfg, redist=redist)
        # To every node, where it may be missing (VNC without a password)
        assert pathutils.VNC_PASSWORD_FILE in wanted.all_nodes
        assert pathutils.VNC_PASSWORD_FILE in wanted.optional
    assert pathutils.VNC_PASSWORD_FILE in files.GetAllowedUploadFiles()
