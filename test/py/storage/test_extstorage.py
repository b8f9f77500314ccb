"""storage.extstorage: providers, their scripts' environment, ext disks, and
the shipped loopfile provider for real (loop devices)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest

from ganeti import constants, errors, objects, pathutils
from ganeti.backend import RPCFail
from ganeti.backend import storage as backend_storage
from ganeti.storage import base, bdev, extstorage

MIB = 1024 * 1024
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
LOOPFILE = os.path.join(REPO_ROOT, "extstorage-definitions", "loopfile")

needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="loop devices (losetup) need root")

OK = "#!/bin/sh\nexit 0\n"


def EsDir(root: str) -> str:
    """The node's ExtStorage search directory (created)."""
    path = os.path.join(root, "srv", "ganeti", "extstorage")
    os.makedirs(path, exist_ok=True)
    return path


def MakeProvider(root: str, name: str, scripts: dict[str, str | None] | None = None,
                 parameters: str | None = "", mode: int = 0o755) -> str:
    """Write a provider; ``scripts`` maps script name -> body (None: absent)."""
    path = os.path.join(EsDir(root), name)
    os.makedirs(path)
    bodies: dict[str, str | None] = {s: OK for s in constants.ES_SCRIPTS_REQUIRED}
    bodies.update(scripts or {})
    for script, body in bodies.items():
        if body is None:
            continue
        with open(os.path.join(path, script), "w", encoding="utf-8") as fd:
            fd.write(body)
        os.chmod(os.path.join(path, script), mode)
    if parameters is not None:
        with open(os.path.join(path, "parameters.list"), "w", encoding="utf-8") as fd:
            fd.write(parameters)
    return path


def _LoopDevicesOf(path: str) -> list[str]:
    out = subprocess.run(["losetup", "-j", path], check=True, capture_output=True,
                         text=True).stdout
    return [line.split(":", 1)[0] for line in out.splitlines() if line.strip()]


def _Disk(vol: str = "uuid1.ext.disk0", provider: str = "loopfile", size: int = 4,
          params: dict | None = None) -> objects.Disk:
    return objects.Disk(dev_type=constants.DT_EXT, logical_id=(provider, vol), size=size,
                        mode=constants.DISK_RDWR, params=params or {}, children=[],
                        uuid="disk-uuid-1", name="data", iv_name="disk/0")


@pytest.fixture(autouse=True)
def node_log_dir(node_root):
    """Every test runs as a virtual node with its log directory."""
    os.makedirs(os.path.join(node_root, "var", "log", "ganeti"))


@pytest.fixture
def loopfile(node_root):
    """The shipped loopfile provider installed on the node; every loop
    device left on its volumes is detached afterwards."""
    shutil.copytree(LOOPFILE, os.path.join(EsDir(node_root), "loopfile"))
    data_dir = os.path.join(node_root, "srv", "ganeti", "extstorage-loopfile")
    yield data_dir
    leftovers = []
    if os.path.isdir(data_dir):
        for name in os.listdir(data_dir):
            for dev in _LoopDevicesOf(os.path.join(data_dir, name)):
                leftovers.append(dev)
                subprocess.run(["losetup", "-d", dev], check=False)
    assert leftovers == [], "loop devices left attached"


# --- Providers -------------------------------------------------------------------------


def test_load_shipped_provider(loopfile, node_root):
    provider = extstorage.LoadProvider("loopfile")
    path = os.path.join(EsDir(node_root), "loopfile")
    assert provider.path == path
    assert provider.create_script == os.path.join(path, "create")
    assert provider.snapshot_script == os.path.join(path, "snapshot")
    assert provider.open_script is None and provider.close_script is None
    assert [p[0] for p in provider.supported_parameters] == ["dir"]
    assert pathutils.ES_SEARCH_PATH == [EsDir(node_root)]


def test_missing_provider(node_root):
    search = EsDir(node_root)
    with pytest.raises(extstorage.ExtStorageError,
                       match=f"provider 'nosuch' not found in the ExtStorage search"
                             f" path \\({search}\\)"):
        extstorage.LoadProvider("nosuch")
    ok, why = extstorage.TryLoadProvider("nosuch")
    assert not ok and "nosuch" in str(why)
    with pytest.raises(errors.BlockDeviceError, match="provider 'nosuch' not found"):
        bdev.FindDevice(_Disk(provider="nosuch"))


@pytest.mark.parametrize("name", ["", "a/b", ".hidden", " x", 5])
def test_invalid_provider_names(node_root, name):
    with pytest.raises(extstorage.ExtStorageError, match="Invalid ExtStorage provider"):
        extstorage.LoadProvider(name)


def test_invalid_providers(node_root):
    MakeProvider(node_root, "noscript", {"grow": None})
    MakeProvider(node_root, "noexec", mode=0o644)
    MakeProvider(node_root, "noparams", parameters=None)
    MakeProvider(node_root, "badparam", parameters="ok A fine one\nbad=x No\n")
    cases = {
        "noscript": "Script 'grow' not found in",
        "noexec": "is not executable",
        "noparams": "Required file 'parameters.list' not found",
        "badparam": "Invalid parameter name 'bad=x'",
    }
    for name, message in cases.items():
        ok, why = extstorage.TryLoadProvider(name)
        assert not ok and message in str(why), (name, why)


def test_parameters_file(node_root):
    MakeProvider(node_root, "p", parameters="# comment\nfromsnap Snapshot to start from\n"
                 "\nnas_ip\tThe IP of the NAS\nbare\n")
    provider = extstorage.LoadProvider("p")
    assert provider.supported_parameters == [
        ["fromsnap", "Snapshot to start from"], ["nas_ip", "The IP of the NAS"],
        ["bare", ""]]
    extstorage.CheckExtParams(provider, {"fromsnap": "x", "bare": 1})
    with pytest.raises(extstorage.ExtStorageError,
                       match="provider 'p' does not support the parameter\\(s\\) colour,"
                             " size_x \\(supported: fromsnap, nas_ip, bare\\)"):
        extstorage.CheckExtParams(provider, {"colour": "red", "size_x": 1, "bare": 2})
    # "access" is the disk's own parameter, not the provider's
    assert extstorage.SplitDiskParams(provider, {"access": "userspace", "bare": 1}) == \
        {"bare": 1}


def test_environment(node_root):
    env = extstorage.ExtStorageEnvironment(
        "vol1", {"fromsnap": "s1", "nas-ip": "10.0.0.1"}, size=10, new_size=20,
        metadata="originstname+inst1", name="data", uuid="u-1", snap_name="vol1.snap",
        snap_size=10, exclusive=False)
    assert env == {
        "VOL_NAME": "vol1", "PATH": constants.ES_SCRIPT_PATH, "VOL_SIZE": "10",
        "VOL_NEW_SIZE": "20", "VOL_METADATA": "originstname+inst1", "VOL_CNAME": "data",
        "VOL_UUID": "u-1", "VOL_SNAPSHOT_NAME": "vol1.snap", "VOL_SNAPSHOT_SIZE": "10",
        "VOL_OPEN_EXCLUSIVE": "False", "EXTP_FROMSNAP": "s1", "EXTP_NAS_IP": "10.0.0.1",
        "GANETI_ROOTDIR": node_root}
    pathutils.Reload({})
    assert "GANETI_ROOTDIR" not in extstorage.ExtStorageEnvironment("v", {})


def test_attach_output_and_metadata():
    assert extstorage.ParseAttachOutput("/dev/loop3\n") == ("/dev/loop3", [])
    assert extstorage.ParseAttachOutput("/dev/rbd1\nkvm:rbd:pool/vol\n\n") == \
        ("/dev/rbd1", ["kvm:rbd:pool/vol"])
    assert extstorage.ParseAttachOutput("\nkvm:gluster://h/v\n") == \
        (None, ["kvm:gluster://h/v"])
    assert extstorage.ParseAttachOutput("") == (None, [])
    assert extstorage.SanitizeMetadata("originstname+inst1.example.com") == \
        "originstname+inst1.example.com"
    assert extstorage.SanitizeMetadata("-a b/c;" + "x" * 200) == "_a_b_c_" + "x" * 121


# --- Scripts, with recording providers (no root needed) --------------------------------

RECORD = """#!/bin/sh
{{ echo "ACTION=$(basename "$0") ARGS=$*"; env | sort; echo; }} >> "{log}"
{extra}
exit 0
"""


def _Recorder(node_root: str, name: str = "rec", attach: str = "printf '\\n%s\\n' "
              "'kvm:file:/srv/vol' 'xen-pvm:nope'", **scripts: str | None) -> str:
    log = os.path.join(node_root, f"{name}.log")
    bodies: dict[str, str | None] = {
        s: RECORD.format(log=log, extra="")
        for s in constants.ES_SCRIPTS_REQUIRED + constants.ES_SCRIPTS_OPTIONAL}
    bodies["attach"] = RECORD.format(log=log, extra=attach)
    bodies.update(scripts)
    MakeProvider(node_root, name, bodies, parameters="colour A colour\n")
    return log


def _Runs(log: str) -> list[dict[str, str]]:
    runs = []
    with open(log, encoding="utf-8") as fd:
        for block in fd.read().split("\n\n"):
            lines = [line for line in block.splitlines() if line]
            if not lines:
                continue
            head = dict(part.split("=", 1) for part in lines[0].split(" ", 1))
            env = dict(line.split("=", 1) for line in lines[1:])
            runs.append({"ACTION": head["ACTION"], "ARGS": head["ARGS"], **env})
    return runs


def test_scripts_and_their_environment(node_root):
    log = _Recorder(node_root)
    disk = _Disk(provider="rec", params={"colour": "blue", "access": "userspace"})
    dev = bdev.Create(disk, [], False)
    # Userspace access only: no block device, the URI for kvm
    assert dev.attached and dev.dev_path is None
    assert dev.GetUserspaceAccessUri("kvm") == "file:/srv/vol"
    with pytest.raises(errors.BlockDeviceError, match="no userspace access URI for the"
                       " 'lxc' hypervisor"):
        dev.GetUserspaceAccessUri("lxc")
    dev.Grow(6, False, True, False)
    assert dev.size == 10
    dev.Grow(6, True, True, False)                     # dry run: nothing runs
    dev.SetInfo("originstname+inst1.example.com")
    assert dev.Snapshot() == ("rec", "uuid1.ext.disk0.snap")
    dev.Open(exclusive=False)
    dev.Close()
    dev.VerifyParams()
    dev.Shutdown()
    assert not dev.attached
    dev.Remove()
    runs = _Runs(log)
    assert [r["ACTION"] for r in runs] == [
        "verify", "create", "attach", "grow", "setinfo", "snapshot", "open", "close",
        "verify", "detach", "remove"]
    for run in runs:
        assert run["VOL_NAME"] == "uuid1.ext.disk0"
        assert run["VOL_CNAME"] == "data" and run["VOL_UUID"] == "disk-uuid-1"
        assert run["EXTP_COLOUR"] == "blue" and "EXTP_ACCESS" not in run
        assert run["PATH"] == constants.ES_SCRIPT_PATH
        assert run["GANETI_ROOTDIR"] == node_root
        # The environment is clean: nothing of ours leaks in
        assert not {"HOME", "PYTEST_CURRENT_TEST"} & set(run)
    by_action = {run["ACTION"]: run for run in runs}
    assert by_action["verify"]["ARGS"] == "parameters"
    assert by_action["create"]["VOL_SIZE"] == "4"
    assert (by_action["grow"]["VOL_SIZE"], by_action["grow"]["VOL_NEW_SIZE"]) == \
        ("4", "10")
    assert by_action["setinfo"]["VOL_METADATA"] == "originstname+inst1.example.com"
    assert (by_action["snapshot"]["VOL_SNAPSHOT_NAME"],
            by_action["snapshot"]["VOL_SNAPSHOT_SIZE"]) == ("uuid1.ext.disk0.snap", "10")
    assert by_action["open"]["VOL_OPEN_EXCLUSIVE"] == "False"
    assert "VOL_SIZE" not in by_action["attach"]
    # Every script but attach left its output in the ExtStorage log directory
    logs = os.listdir(pathutils.LOG_ES_DIR)
    assert any(name.startswith("create-rec-uuid1.ext.disk0-") for name in logs)
    assert not any(name.startswith("attach-") for name in logs)


def test_kernelspace_disks_have_no_uri(node_root):
    _Recorder(node_root, attach="echo /dev/null; echo kvm:file:/x")
    # /dev/null is no block device: attach "fails"
    assert bdev.FindDevice(_Disk(provider="rec")) is None
    with pytest.raises(errors.BlockDeviceError, match="/dev/null is not a block device"):
        bdev.Assemble(_Disk(provider="rec"))
    _Recorder(node_root, name="rec2")
    dev = bdev.FindDevice(_Disk(provider="rec2", params={"access": "kernelspace"}))
    assert dev is not None and dev.GetUserspaceAccessUri("kvm") is None
    with pytest.raises(errors.BlockDeviceError, match="has no block device"):
        dev.GetActualSize()


def test_failing_create(node_root):
    MakeProvider(node_root, "failing", {
        "create": "#!/bin/sh\necho 'preparing volume'\necho \"cannot reach the NAS"
                  " for $VOL_NAME\" >&2\nexit 3\n"})
    with pytest.raises(errors.BlockDeviceError) as info:
        bdev.Create(_Disk(provider="failing"), [], False)
    msg = str(info.value)
    assert "ExtStorage provider 'failing': the create script failed for volume" \
           " 'uuid1.ext.disk0' (exited with exit code 3)" in msg
    assert msg.endswith("last output lines:\npreparing volume\ncannot reach the NAS for"
                        " uuid1.ext.disk0")
    assert f"(log file {pathutils.LOG_ES_DIR}/create-failing-uuid1.ext.disk0-" in msg
    # Through the RPC handler: the same message
    with pytest.raises(RPCFail, match="Cannot create ext disk disk/0.*exit code 3"):
        backend_storage.BlockdevCreate(_Disk(provider="failing").ToDict(), 4, "inst1",
                                       True, "", False)


def test_failing_verify_and_missing_snapshot(node_root):
    MakeProvider(node_root, "picky", {
        "verify": "#!/bin/sh\necho \"colour $EXTP_COLOUR is ugly\" >&2\nexit 1\n",
        "attach": "#!/bin/sh\nprintf '\\nkvm:x\\n'\n"}, parameters="colour Colour\n")
    with pytest.raises(errors.BlockDeviceError,
                       match="the verify script failed.*\n.*colour red is ugly"):
        bdev.Create(_Disk(provider="picky", params={"colour": "red"}), [], False)
    dev = bdev.FindDevice(_Disk(provider="picky"))
    assert dev is not None
    with pytest.raises(errors.BlockDeviceError, match="'picky' does not support"
                       " snapshots"):
        dev.Snapshot()


def test_bad_parameter_creates_nothing(node_root):
    log = _Recorder(node_root)
    with pytest.raises(errors.BlockDeviceError,
                       match="provider 'rec' does not support the parameter\\(s\\) size_x"
                             " \\(supported: colour\\)"):
        bdev.Create(_Disk(provider="rec", params={"size_x": "1"}), [], False)
    assert not os.path.exists(log)


def test_invalid_ids_and_sizes(node_root):
    _Recorder(node_root)
    with pytest.raises(errors.BlockDeviceError, match="expected \\(provider, volume"):
        extstorage.ExtStorageDevice(("rec",), [], 1, {})
    with pytest.raises(errors.BlockDeviceError, match="Invalid ExtStorage volume name"):
        extstorage.ExtStorageDevice(("rec", ""), [], 1, {})
    with pytest.raises(errors.BlockDeviceError, match="Invalid size 0"):
        bdev.Create(_Disk(provider="rec", size=0), [], False)
    with pytest.raises(errors.BlockDeviceError, match="Exclusive storage"):
        bdev.Create(_Disk(provider="rec"), [], True)
    dev = bdev.FindDevice(_Disk(provider="rec"))
    assert dev is not None
    with pytest.raises(errors.BlockDeviceError, match="Rename is not supported"):
        dev.Rename(("rec", "other"))


# --- The loopfile provider, for real ---------------------------------------------------


def _ReadAt(path: str, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


@needs_root
def test_loopfile_lifecycle(loopfile):
    data_dir = loopfile
    disk = _Disk()
    image = os.path.join(data_dir, "uuid1.ext.disk0.img")
    assert bdev.FindDevice(disk) is None               # not created yet
    dev = bdev.Create(disk, [], False)
    assert dev.dev_path is not None and dev.dev_path.startswith("/dev/loop")
    assert stat.S_ISBLK(os.stat(dev.dev_path).st_mode)
    assert _LoopDevicesOf(image) == [dev.dev_path]
    assert os.path.getsize(image) == 4 * MIB
    assert os.stat(image).st_blocks * 512 < MIB       # sparse
    assert stat.S_IMODE(os.stat(image).st_mode) == 0o600
    assert dev.GetActualSize() == 4 * MIB
    # Write through the block device, read back through a new attach
    fd = os.open(dev.dev_path, os.O_RDWR)
    try:
        os.pwrite(fd, b"written through the loop device", 3 * MIB)
        os.fsync(fd)
    finally:
        os.close(fd)
    again = bdev.FindDevice(disk)
    assert again is not None and again.dev_path == dev.dev_path   # same device
    assert _ReadAt(again.dev_path, 3 * MIB, 31) == b"written through the loop device"
    # Grow: the attached device sees the new size at once (losetup -c)
    again.Grow(4, False, True, False)
    assert os.path.getsize(image) == 8 * MIB
    assert again.GetActualSize() == 8 * MIB
    again.SetInfo("originstname+inst1.example.com")
    with open(os.path.join(data_dir, "uuid1.ext.disk0.info"), encoding="utf-8") as fd_i:
        assert fd_i.read() == "originstname+inst1.example.com\n"
    # Snapshot: a sparse copy, a volume of its own
    assert again.Snapshot(snap_name="uuid1.ext.disk0.snap") == \
        ("loopfile", "uuid1.ext.disk0.snap")
    snap_image = os.path.join(data_dir, "uuid1.ext.disk0.snap.img")
    assert os.path.getsize(snap_image) == 8 * MIB
    assert _ReadAt(snap_image, 3 * MIB, 31) == b"written through the loop device"
    # Shutdown detaches; the data stays
    again.Shutdown()
    assert _LoopDevicesOf(image) == []
    assert _ReadAt(image, 3 * MIB, 31) == b"written through the loop device"
    assembled = bdev.Assemble(disk)
    assert assembled.dev_path and _LoopDevicesOf(image) == [assembled.dev_path]
    # Remove: detached and gone
    assembled.Remove()
    assert _LoopDevicesOf(image) == [] and not os.path.exists(image)
    assert not os.path.exists(os.path.join(data_dir, "uuid1.ext.disk0.info"))
    assert bdev.FindDevice(disk) is None
    snap = bdev.FindDevice(_Disk(vol="uuid1.ext.disk0.snap", size=8))
    assert snap is not None and snap.GetActualSize() == 8 * MIB
    snap.Shutdown()
    snap.Remove()
    assert os.listdir(data_dir) == [".lock"]


@needs_root
def test_loopfile_through_rpc_handlers(loopfile, tmp_path):
    """The node's blockdev_* handlers with an ext disk, the dir parameter set."""
    data_dir = str(tmp_path / "volumes")
    disk = _Disk(vol="uuid2.ext.disk0", params={"dir": data_dir}).ToDict()
    image = os.path.join(data_dir, "uuid2.ext.disk0.img")
    assert backend_storage.BlockdevCreate(disk, 4, "inst1", True,
                                          "originstname+inst1", False) == \
        ("loopfile", "uuid2.ext.disk0")
    try:
        link, uri = backend_storage.BlockdevAssemble(
            disk, {"name": "inst1", "hypervisor": "kvm"}, True, 0)
        assert link is not None and uri is None        # kernelspace access
        assert stat.S_ISBLK(os.stat(link).st_mode)
        assert _LoopDevicesOf(image) == [os.path.realpath(link)]
        assert backend_storage.BlockdevGetDimensions([disk]) == [(4 * MIB, None)]
        backend_storage.BlockdevShutdown(disk)
        assert _LoopDevicesOf(image) == []
        with pytest.raises(RPCFail, match="already exists"):
            backend_storage.BlockdevCreate(disk, 4, "inst1", True, "", False)
    finally:
        backend_storage.BlockdevRemove(disk)
    assert not os.path.exists(image) and _LoopDevicesOf(image) == []
    backend_storage.BlockdevRemove(disk)               # gone already: fine


@needs_root
def test_loopfile_userspace_uri(loopfile):
    disk = _Disk(vol="uuid3.ext.disk0", params={"access": constants.DISK_USERSPACE})
    dev = bdev.Create(disk, [], False)
    try:
        assert dev.GetUserspaceAccessUri("kvm") == \
            os.path.join(loopfile, "uuid3.ext.disk0.img")
    finally:
        dev.Shutdown()
        dev.Remove()


@needs_root
def test_loopfile_refuses(loopfile):
    with pytest.raises(errors.BlockDeviceError, match="invalid volume name '../x'"):
        bdev.Create(_Disk(vol="../x"), [], False)
    with pytest.raises(errors.BlockDeviceError, match="invalid volume name 'a/b'"):
        bdev.Create(_Disk(vol="a/b"), [], False)
    with pytest.raises(errors.BlockDeviceError,
                       match="dir parameter must be an absolute path"):
        bdev.Create(_Disk(params={"dir": "relative"}), [], False)
    # Attaching a volume that does not exist: not found, and Assemble says why
    assert bdev.FindDevice(_Disk(vol="nosuch")) is None
    with pytest.raises(errors.BlockDeviceError, match="volume nosuch does not exist"):
        bdev.Assemble(_Disk(vol="nosuch"))
    assert not os.path.exists(loopfile) or os.listdir(loopfile) == [".lock"]


def test_base_status_of_unattached(node_root):
    _Recorder(node_root, attach="exit 1")
    dev = extstorage.ExtStorageDevice(("rec", "v"), [], 1, {})
    assert not dev.attached
    status = dev.GetSyncStatus()
    assert status.is_degraded and status.ldisk_status == base.LDS_FAULTY
    assert "the attach script failed" in str(dev.attach_error)
