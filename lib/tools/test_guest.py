"""make-test-guest: a small bootable guest for tests, built from Debian packages.

The guest is a Debian cloud kernel and an initramfs holding a static busybox
and an ``/init`` shell script (:data:`INIT_SCRIPT`); see doc/test-guest.rst.
Nothing is downloaded from anywhere but the Debian archive, and nothing is
installed: the kernel package and ``busybox-static`` are fetched with
``apt-get download`` into the cache directory (or taken from apt's own
cache) and unpacked with ``dpkg-deb -x`` into a temporary directory. What
the machine has installed does not matter; in particular, installing
``busybox-static`` would remove Debian's ``busybox`` package, which
conflicts with it and which many machines have.

The build is cached: :func:`EnsureGuest` rebuilds only when an input (the
versions of the two packages, the init script, the kernel options)
differs from the one recorded in the manifest.

The module also boots the guest for tests: :func:`QemuCommand` gives a
``qemu-system-x86_64`` command line and :class:`SerialConsole` reads the
guest's serial console, waiting for a line with a deadline.

Booted from a helper image (:func:`HelperImage`) as its first disk, the
guest runs the image's script instead of its usual loop and powers off:
:func:`ZeroingImage` is the cluster's zeroing image for ``gnt-backup
export --zero-free-space`` in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import glob
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

#: Bump when the layout of the output changes in a way the key cannot see
FORMAT_VERSION = 2

KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE = "busybox-static"
#: Where busybox-static's package holds its binary
BUSYBOX_PATH = "bin/busybox"
#: Overrides the default output directory (tests and the virtual cluster)
DIR_ENV = "GANETI_TEST_GUEST_DIR"
ROOT_DEFAULT_DIR = "/var/cache/ganeti-test-guest"
#: apt's own cache of downloaded packages
APT_ARCHIVES = Path("/var/cache/apt/archives")

KERNEL_FILE = "vmlinuz"
INITRD_FILE = "initrd.img"
MANIFEST_FILE = "manifest.json"

#: The kernel options the guest needs, with the module that provides each
#: when the option is ``=m``, in load order (dependencies are added).
KERNEL_OPTIONS = (
    ("CONFIG_VIRTIO_PCI", "virtio_pci"),
    ("CONFIG_VIRTIO_BLK", "virtio_blk"),
    ("CONFIG_VIRTIO_NET", "virtio_net"),
    ("CONFIG_VIRTIO_BALLOON", "virtio_balloon"),
    # The ACPI power button, as an input device with an event node
    ("CONFIG_ACPI_BUTTON", "button"),
    ("CONFIG_INPUT_EVDEV", "evdev"),
)

#: Disk layout (offsets in the guest's first disk). The OS definition
#: os-definitions/testguest writes the marker line at MARKER_OFFSET; the
#: guest prints it at boot and writes "guest-wrote <boot count>" at
#: GUEST_WRITE_OFFSET, zero-padded to one sector.
MARKER_OFFSET = 0
GUEST_WRITE_OFFSET = 4096
SECTOR = 512

#: Lines the guest prints on its serial console
HEARTBEAT_RE = re.compile(rb"heartbeat (\d+)")
MARKER_RE = re.compile(rb"test-guest: marker: (.*)")
WROTE_RE = re.compile(rb"test-guest: guest-wrote (\d+)")
NET_RE = re.compile(rb"test-guest: net: (.*)")
BLOCK_RE = re.compile(rb"test-guest: block: (.*)")
POWEROFF_RE = re.compile(rb"test-guest: power button")

INIT_SCRIPT = r"""#!/bin/busybox sh
# PID 1 of the Ganeti test guest (lib/tools/test_guest.py, doc/test-guest.rst)
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "test-guest: init started, kernel $(uname -r)"

while read -r mod; do
  insmod "/lib/modules/$mod.ko" || echo "test-guest: insmod $mod failed"
done < /lib/modules/load.list

# The first disk: print the marker line, count the boots in a line written
# at a fixed offset, flushed so that the host sees it in the image
if [ -b /dev/vda ] && [ "$(cat /sys/block/vda/size)" -gt @WRITE_SECTOR@ ]; then
  marker=$(dd if=/dev/vda bs=@SECTOR@ count=1 2>/dev/null | tr -d '\000' | head -n 1)
  echo "test-guest: marker: $marker"
  # A helper image (gnt-backup export --zero-free-space): run the script
  # stored from sector 1 on, NUL-padded, instead of counting the boot;
  # then power off, which ends the helper VM
  if [ "$marker" = "@HELPER_MARKER@" ]; then
    dd if=/dev/vda bs=@SECTOR@ skip=1 count=@HELPER_SECTORS@ 2>/dev/null \
      | tr -d '\000' > /tmp/helper.sh
    echo "test-guest: helper: running"
    sh /tmp/helper.sh
    echo "test-guest: helper: done $?"
    sync
    poweroff -f
  fi
  prev=$(dd if=/dev/vda bs=@SECTOR@ skip=@WRITE_SECTOR@ count=1 2>/dev/null \
         | tr -d '\000' | head -n 1)
  count=${prev#guest-wrote }
  case "$count" in ''|*[!0-9]*) count=0 ;; esac
  count=$((count + 1))
  printf 'guest-wrote %d\n' "$count" \
    | dd of=/dev/vda bs=@SECTOR@ seek=@WRITE_SECTOR@ count=1 conv=sync,notrunc,fsync 2>/dev/null
  echo "test-guest: guest-wrote $count"
else
  echo "test-guest: no disk"
fi

# The ACPI power button (QMP system_powerdown): its input device reports
# nothing but presses, so one event read from it means "power off" (evdev
# reads whole 24-byte events; a failed read powers nothing off)
for dev in /sys/class/input/event*; do
  [ "$(cat "$dev/device/name" 2>/dev/null)" = "Power Button" ] || continue
  (
    if dd if="/dev/input/${dev##*/}" bs=24 count=1 >/dev/null 2>&1; then
      echo "test-guest: power button, powering off"
      sync
      poweroff -f
    fi
    echo "test-guest: cannot read the power button ${dev##*/}"
  ) &
  echo "test-guest: watching the power button ${dev##*/}"
done

# Memory churn for migration tests (kernel argument testguest.dirty=MiB):
# random data rewritten over and over in a tmpfs, so that a migration
# whose bandwidth is limited cannot converge by copying alone
dirty=$(sed -n 's/.*testguest\.dirty=\([0-9]*\).*/\1/p' /proc/cmdline)
if [ -n "$dirty" ]; then
  mkdir -p /run
  mount -t tmpfs -o size=$((dirty * 2 + 4))m tmpfs /run
  dd if=/dev/urandom of=/run/a bs=1M count="$dirty" 2>/dev/null
  ( while :; do cp /run/a /run/b; cp /run/b /run/a; done ) &
  echo "test-guest: dirtying $dirty MiB"
fi

beat=0
net=""
block=""
while :; do
  beat=$((beat + 1))
  echo "heartbeat $beat"
  now=$(cd /sys/class/net && echo *)
  if [ "$now" != "$net" ]; then
    for nic in $now; do ip link set "$nic" up 2>/dev/null; done
    net=$now
    echo "test-guest: net: $net"
  fi
  now=$(cd /sys/block && echo *)
  if [ "$now" != "$block" ]; then
    block=$now
    echo "test-guest: block: $block"
  fi
  sleep @INTERVAL@
done
"""
HEARTBEAT_INTERVAL = 1

#: The first line of a helper image (see :func:`HelperImage`)
HELPER_MARKER = "ganeti-helper-image"
#: Bytes of a helper image: the marker sector and at most this less one
#: sector of script (the guest reads no more)
HELPER_IMAGE_SIZE = 64 * 1024
HELPER_RUNNING_RE = re.compile(rb"^test-guest: helper: running$")
HELPER_DONE_RE = re.compile(rb"^test-guest: helper: done (\d+)$")
ZEROED_RE = re.compile(rb"^test-guest: zeroed (/dev/vd[a-z])$")

#: What the zeroing script keeps of each disk: the test guest's "used
#: space" is its first MiB (the marker line at 0, the boot counter at 4096)
ZEROING_KEEP = 1024 * 1024
_MIB_SECTORS = 1024 * 1024 // SECTOR

#: The zeroing image's script (gnt-backup export --zero-free-space): zeros
#: from ZEROING_KEEP to the end of every disk but the helper's own (vda),
#: in MiB blocks and then sectors; exits 1 if any disk failed
ZEROING_SCRIPT = r"""# Ganeti test guest zeroing helper (lib/tools/test_guest.py)
keep=@KEEP_SECTORS@
status=0
for dev in /dev/vd[b-z]; do
  [ -b "$dev" ] || continue
  sectors=$(cat "/sys/block/${dev#/dev/}/size")
  left=$((sectors - keep))
  ok=1
  if [ "$left" -gt 0 ]; then
    mib=$((left / @MIB_SECTORS@))
    rest=$((left % @MIB_SECTORS@))
    if [ "$mib" -gt 0 ]; then
      dd if=/dev/zero of="$dev" bs=1M seek=$((keep / @MIB_SECTORS@)) count="$mib" \
        conv=notrunc,fsync 2>/dev/null || ok=0
    fi
    if [ "$rest" -gt 0 ]; then
      dd if=/dev/zero of="$dev" bs=@SECTOR@ seek=$((keep + mib * @MIB_SECTORS@)) \
        count="$rest" conv=notrunc,fsync 2>/dev/null || ok=0
    fi
  fi
  if [ "$ok" = 1 ]; then
    echo "test-guest: zeroed $dev"
  else
    echo "test-guest: zeroing $dev failed"
    status=1
  fi
done
sync
exit $status
""".replace("@KEEP_SECTORS@", str(ZEROING_KEEP // SECTOR)) \
    .replace("@MIB_SECTORS@", str(_MIB_SECTORS)).replace("@SECTOR@", str(SECTOR))
assert ZEROING_KEEP % (1024 * 1024) == 0, "the script seeks in MiB"


def InitScript() -> str:
    """The guest's /init with the layout constants filled in."""
    return (INIT_SCRIPT.replace("@SECTOR@", str(SECTOR))
            .replace("@WRITE_SECTOR@", str(GUEST_WRITE_OFFSET // SECTOR))
            .replace("@HELPER_MARKER@", HELPER_MARKER)
            .replace("@HELPER_SECTORS@", str(HELPER_IMAGE_SIZE // SECTOR - 1))
            .replace("@INTERVAL@", str(HEARTBEAT_INTERVAL)))


# --- helper images ---------------------------------------------------------------

def HelperImage(script: str) -> bytes:
    """A helper image running ``script`` (busybox sh) when the guest boots
    from it: the :data:`HELPER_MARKER` line in sector 0, the script from
    sector 1 on, NULs up to :data:`HELPER_IMAGE_SIZE` bytes.

    @raise ValueError: the script holds a NUL or does not fit
    """
    data = script.encode()
    if b"\0" in data:
        raise ValueError("a helper script cannot hold NUL bytes")
    if len(data) > HELPER_IMAGE_SIZE - SECTOR:
        raise ValueError(f"the helper script has {len(data)} bytes; at most"
                         f" {HELPER_IMAGE_SIZE - SECTOR} fit in a helper image")
    marker = (HELPER_MARKER + "\n").encode().ljust(SECTOR, b"\0")
    return (marker + data).ljust(HELPER_IMAGE_SIZE, b"\0")


def ZeroingImage() -> bytes:
    """The zeroing image: a helper image running :data:`ZEROING_SCRIPT`."""
    return HelperImage(ZEROING_SCRIPT)


class GuestBuildError(Exception):
    """The test guest could not be built."""


@dataclasses.dataclass(frozen=True)
class Guest:
    """A built test guest."""

    directory: Path
    manifest: dict[str, Any]

    @property
    def kernel(self) -> Path:
        """The kernel image (bzImage)."""
        return self.directory / KERNEL_FILE

    @property
    def initrd(self) -> Path:
        """The initramfs (gzipped cpio)."""
        return self.directory / INITRD_FILE


def DefaultDir() -> Path:
    """The cache directory: $GANETI_TEST_GUEST_DIR, else by user."""
    if os.environ.get(DIR_ENV):
        return Path(os.environ[DIR_ENV])
    if os.geteuid() == 0:
        return Path(ROOT_DEFAULT_DIR)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(cache) / "ganeti-test-guest"


# --- cpio (newc) -----------------------------------------------------------

def _CpioEntry(out: BinaryIO, ino: int, name: str, mode: int, data: bytes = b"",
               rdev: tuple[int, int] = (0, 0)) -> None:
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1],
              len(name) + 1, 0)
    header = b"070701" + b"".join(b"%08X" % value for value in fields)
    out.write(header + name.encode() + b"\0")
    out.write(b"\0" * (-(len(header) + len(name) + 1) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))


@dataclasses.dataclass
class CpioItem:
    """One file of an initramfs: a directory, a regular file or a device."""

    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def WriteCpio(items: Sequence[CpioItem], out: BinaryIO) -> None:
    """Write ``items`` as a cpio archive in the "newc" format the kernel reads.

    Owners are root and times zero, so the same items give the same bytes;
    device nodes need no privilege, unlike ``mknod`` and ``cpio``.
    """
    for ino, item in enumerate(items, start=1):
        _CpioEntry(out, ino, item.name, item.mode, item.data, item.rdev)
    _CpioEntry(out, 0, "TRAILER!!!", 0)


# --- kernel modules ----------------------------------------------------------

def ModInfo(path: Path) -> dict[str, str]:
    """The ``.modinfo`` section of a kernel module (an ELF64 object).

    Read directly: the package ships no modules.dep (depmod makes it when
    the package is installed) and kmod's modinfo need not be present.
    """
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise GuestBuildError(f"{path} is not an ELF64 object")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        name, _, _, _, offset, size = struct.unpack_from(
            "<IIQQQQ", data, shoff + index * shentsize)
        return name, offset, size

    _, str_offset, _ = section(shstrndx)
    for index in range(shnum):
        name, offset, size = section(index)
        end = data.index(b"\0", str_offset + name)
        if data[str_offset + name:end] == b".modinfo":
            info: dict[str, str] = {}
            for entry in data[offset:offset + size].split(b"\0"):
                key, sep, value = entry.decode(errors="replace").partition("=")
                if sep:
                    info.setdefault(key, value)
            return info
    raise GuestBuildError(f"{path} has no .modinfo section")


def ResolveModules(modules_dir: Path, wanted: Sequence[str]) -> list[Path]:
    """The module files for ``wanted`` and their dependencies, in load order."""
    by_name = {path.stem.replace("-", "_"): path
               for path in modules_dir.rglob("*.ko")}
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = name.replace("-", "_")
        if name in seen:
            return
        if name in chain:
            raise GuestBuildError(f"module dependency loop: {' -> '.join(chain + (name,))}")
        path = by_name.get(name)
        if path is None:
            raise GuestBuildError(f"module {name} not found under {modules_dir}")
        for dep in filter(None, ModInfo(path).get("depends", "").split(",")):
            visit(dep, chain + (name,))
        seen.add(name)
        order.append(path)

    for name in wanted:
        visit(name, ())
    return order


def ParseKernelConfig(text: str) -> dict[str, str]:
    """``CONFIG_X=value`` lines of a kernel config file."""
    config = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("CONFIG_"):
            config[key] = value
    return config


def ModulesNeeded(config: dict[str, str]) -> list[str]:
    """The modules to load for :data:`KERNEL_OPTIONS` (built-in ones need none)."""
    modules = []
    for option, module in KERNEL_OPTIONS:
        value = config.get(option)
        if value == "m":
            modules.append(module)
        elif value != "y":
            raise GuestBuildError(f"the kernel lacks {option}, which the test guest needs")
    return modules


# --- Debian packages ---------------------------------------------------------

class _Apt:
    """apt look-ups and downloads; ``apt-get update`` at most once, as root."""

    def __init__(self, log: Any) -> None:
        self._log = log
        self._updated = False

    def _Run(self, args: Sequence[str], cwd: Path | None = None) -> str:
        result = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True,
                                check=False, env=dict(os.environ, LC_ALL="C"))
        if result.returncode != 0:
            raise GuestBuildError(f"'{' '.join(args)}' failed: "
                                  f"{result.stderr.strip() or result.returncode}")
        return result.stdout

    def _Update(self, why: Exception) -> bool:
        """Run ``apt-get update`` once; False if that is not possible."""
        if self._updated or os.geteuid() != 0:
            return False
        self._log(f"{why}; running apt-get update")
        self._Run(["apt-get", "update", "-qq"])
        self._updated = True
        return True

    def _Retry(self, func: Any) -> Any:
        try:
            return func()
        except GuestBuildError as err:
            if not self._Update(err):
                if os.geteuid() != 0:
                    raise GuestBuildError(
                        f"{err} (not root, so apt-get update cannot help: run"
                        " tools/make-test-guest once as root, or set"
                        f" {DIR_ENV} to a directory with a built guest)") from None
                raise
            return func()

    def Candidate(self, package: str) -> str:
        """The version apt would install of ``package``."""
        def lookup() -> str:
            out = self._Run(["apt-cache", "show", "--no-all-versions", package])
            match = re.search(r"^Version: (\S+)", out, re.M)
            if not match:
                raise GuestBuildError(f"apt knows no version of {package}")
            return match.group(1)
        return self._Retry(lookup)

    def KernelPackage(self) -> tuple[str, str]:
        """The linux-image-*-cloud-amd64 package the metapackage depends on,
        and its version (one apt-cache call: each costs a second or two
        where apt keeps no binary cache, as in Debian's container images)."""
        def lookup() -> tuple[str, str]:
            out = self._Run(["apt-cache", "show", "--no-all-versions", KERNEL_METAPACKAGE])
            match = re.search(r"^Depends:.*?\b(linux-image-[^\s,]+)(?: \(= ([^)\s]+)\))?",
                              out, re.M)
            if not match:
                raise GuestBuildError(f"{KERNEL_METAPACKAGE} depends on no kernel package")
            return match.group(1), match.group(2) or ""
        package, version = self._Retry(lookup)
        return package, version or self.Candidate(package)

    def Deb(self, package: str, version: str, cache: Path) -> Path:
        """The .deb of ``package`` ``version`` in ``cache``: there already,
        copied from apt's own cache, or fetched with ``apt-get download``."""
        for candidate in sorted(cache.glob(f"{package}_*.deb")):
            if _DebField(candidate, "Version") == version:
                return candidate
        cache.mkdir(parents=True, exist_ok=True)
        for candidate in sorted(APT_ARCHIVES.glob(f"{package}_*.deb")):
            if _DebField(candidate, "Version") == version:
                # A copy: apt-get clean must not break a later rebuild
                self._log(f"copying {candidate}")
                shutil.copyfile(candidate, cache / candidate.name)
                return cache / candidate.name
        self._log(f"downloading {package} {version}")
        self._Retry(lambda: self._Run(
            ["apt-get", "download", "-q", f"{package}={version}"], cwd=cache))
        for candidate in cache.glob(f"{package}_*.deb"):
            if _DebField(candidate, "Version") == version:
                return candidate
        raise GuestBuildError(f"apt-get download left no .deb of {package} {version}")


def _DebField(deb: Path, field: str) -> str:
    result = subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True,
                            text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def _Sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the build -----------------------------------------------------------------

@contextlib.contextmanager
def _Locked(directory: Path) -> Iterator[None]:
    """One build at a time in ``directory`` (parallel test runs share it)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _AtomicWrite(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _ReadManifest(directory: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None
    for name, digest in manifest.get("sha256", {}).items():
        try:
            if _Sha256((directory / name).read_bytes()) != digest:
                return None
        except OSError:
            return None
    return manifest


#: What apt's answers depend on: when none of these changed, neither did
#: the kernel package apt would give
APT_STATE = ("/var/lib/apt/lists", "/etc/apt/preferences", "/etc/apt/preferences.d")


def _AptStamp() -> str:
    entries = []
    for top in APT_STATE:
        paths = [Path(top)] + (sorted(Path(top).iterdir()) if os.path.isdir(top) else [])
        for path in paths:
            with contextlib.suppress(OSError):
                info = path.stat()
                entries.append((str(path), info.st_size, info.st_mtime_ns))
    return _Sha256(json.dumps(entries).encode())


#: The inputs apt tells (package names and versions)
APT_INPUTS = ("kernel_package", "kernel_version", "busybox_version")


def _Inputs(apt: _Apt, known: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the guest is made of, without building it: apt-cache look-ups
    unless ``known`` (an earlier manifest) has the :data:`APT_INPUTS`."""
    if known is not None and all(known.get(name) for name in APT_INPUTS):
        kernel_package, kernel_version = known["kernel_package"], known["kernel_version"]
        busybox_version = known["busybox_version"]
    else:
        kernel_package, kernel_version = apt.KernelPackage()
        busybox_version = apt.Candidate(BUSYBOX_PACKAGE)
    return {
        "format": FORMAT_VERSION,
        "kernel_package": kernel_package,
        "kernel_version": kernel_version,
        "busybox_package": BUSYBOX_PACKAGE,
        "busybox_version": busybox_version,
        "init_sha256": _Sha256(InitScript().encode()),
        "kernel_options": [option for option, _ in KERNEL_OPTIONS],
    }


def _Key(inputs: dict[str, Any]) -> str:
    return _Sha256(json.dumps(inputs, sort_keys=True).encode())


def _Unpack(deb: Path, target: Path) -> None:
    """``dpkg-deb -x``: the package's files under ``target``, nothing run."""
    result = subprocess.run(["dpkg-deb", "-x", str(deb), str(target)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise GuestBuildError(f"'dpkg-deb -x {deb}' failed:"
                              f" {result.stderr.strip() or result.returncode}")


def _Build(directory: Path, apt: _Apt, inputs: dict[str, Any], log: Any) -> dict[str, Any]:
    debs = directory / "debs"
    with tempfile.TemporaryDirectory(prefix="test-guest.") as tmpname:
        tmp = Path(tmpname)
        deb = apt.Deb(inputs["kernel_package"], inputs["kernel_version"], debs)
        busybox_deb = apt.Deb(BUSYBOX_PACKAGE, inputs["busybox_version"], debs)
        log(f"unpacking {deb.name} and {busybox_deb.name}")
        _Unpack(deb, tmp / "kernel")
        _Unpack(busybox_deb, tmp / "busybox")
        kernels = glob.glob(str(tmp / "kernel" / "boot" / "vmlinuz-*"))
        if len(kernels) != 1:
            raise GuestBuildError(f"{deb.name} holds {len(kernels)} kernels, expected one")
        release = os.path.basename(kernels[0])[len("vmlinuz-"):]
        config = ParseKernelConfig(
            (tmp / "kernel" / "boot" / f"config-{release}").read_text())
        modules = ResolveModules(tmp / "kernel" / "lib" / "modules" / release,
                                 ModulesNeeded(config))
        busybox_path = tmp / "busybox" / BUSYBOX_PATH
        if not busybox_path.is_file():
            raise GuestBuildError(f"{busybox_deb.name} holds no /{BUSYBOX_PATH}")
        busybox = busybox_path.read_bytes()

        items = [CpioItem(name, 0o040755) for name in
                 ("bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules")]
        # The kernel opens /dev/console for init before devtmpfs is mounted
        items.append(CpioItem("dev/console", 0o020600, rdev=(5, 1)))
        items.append(CpioItem("bin/busybox", 0o100755, busybox))
        items.append(CpioItem("init", 0o100755, InitScript().encode()))
        names = []
        for path in modules:
            name = path.stem.replace("-", "_")
            names.append(name)
            items.append(CpioItem(f"lib/modules/{name}.ko", 0o100644, path.read_bytes()))
        items.append(CpioItem("lib/modules/load.list", 0o100644,
                              "".join(f"{name}\n" for name in names).encode()))
        archive = io.BytesIO()
        WriteCpio(items, archive)
        initrd = gzip.compress(archive.getvalue(), compresslevel=9, mtime=0)
        kernel = Path(kernels[0]).read_bytes()

    _AtomicWrite(directory / KERNEL_FILE, kernel)
    _AtomicWrite(directory / INITRD_FILE, initrd)
    manifest = dict(inputs)
    manifest.update({
        "key": _Key(inputs),
        "kernel_deb": deb.name,
        "busybox_deb": busybox_deb.name,
        "busybox_sha256": _Sha256(busybox),
        "kernel_release": release,
        "modules": names,
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sizes": {KERNEL_FILE: len(kernel), INITRD_FILE: len(initrd)},
        "sha256": {KERNEL_FILE: _Sha256(kernel), INITRD_FILE: _Sha256(initrd)},
    })
    # Keep only the packages this build used
    for old in debs.glob("*.deb") if debs.is_dir() else []:
        if old.name not in (deb.name, busybox_deb.name):
            old.unlink()
    return manifest


def EnsureGuest(directory: Path | str | None = None, force: bool = False,
                log: Any = None) -> Guest:
    """Build the test guest in ``directory`` unless an up-to-date build is there.

    When apt cannot tell the current kernel package (no package lists and
    not root, say) an existing build is used as it is.

    @raise GuestBuildError: when no guest can be built or found
    """
    directory = Path(directory) if directory is not None else DefaultDir()
    if log is None:
        def log(msg: str) -> None:
            print(f"make-test-guest: {msg}", file=sys.stderr)
    apt = _Apt(log)
    with _Locked(directory):
        existing = _ReadManifest(directory)
        stamp = _AptStamp()
        # apt's answers change only with its package lists
        known = existing if existing is not None and existing.get("apt_stamp") == stamp \
            else None
        try:
            inputs = _Inputs(apt, known)
        except GuestBuildError as err:
            if existing is None:
                raise
            log(f"{err}; using the existing build ({existing.get('kernel_package')})")
            return Guest(directory, existing)
        if existing is not None and not force and existing.get("key") == _Key(inputs):
            if existing.get("apt_stamp") != stamp:
                existing["apt_stamp"] = stamp
                _WriteManifest(directory, existing)
            return Guest(directory, existing)
        log(f"building in {directory}")
        manifest = _Build(directory, apt, inputs, log)
        # apt-get update (run by the build) changes the stamp: take it after
        manifest["apt_stamp"] = _AptStamp()
        _WriteManifest(directory, manifest)
        return Guest(directory, manifest)


def _WriteManifest(directory: Path, manifest: dict[str, Any]) -> None:
    _AtomicWrite(directory / MANIFEST_FILE,
                 json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")


# --- booting it ----------------------------------------------------------------

QEMU = "qemu-system-x86_64"
#: MiB of guest memory: Debian's cloud kernel does not even decompress in
#: 64 MiB (it resets and starts over); 80 MiB is enough
DEFAULT_MEMORY = 96
MIN_MEMORY = 80


def QemuCommand(guest: Guest, serial_path: str, qmp_path: str | None = None,
                disk: str | None = None, memory: int = DEFAULT_MEMORY,
                extra: Sequence[str] = ()) -> list[str]:
    """A command line booting ``guest`` under TCG (see DESIGN.md: KVM hangs here).

    The serial console and the QMP monitor are Unix sockets QEMU listens on
    (``wait=off``: QEMU runs without waiting for a client).
    """
    cmd = [QEMU, "-accel", "tcg", "-machine", "pc", "-m", str(memory), "-nodefaults",
           "-display", "none", "-no-user-config",
           "-kernel", str(guest.kernel), "-initrd", str(guest.initrd),
           "-append", "console=ttyS0 quiet panic=-1",
           "-chardev", f"socket,id=serial0,path={serial_path},server=on,wait=off",
           "-serial", "chardev:serial0"]
    if qmp_path is not None:
        cmd += ["-qmp", f"unix:{qmp_path},server=on,wait=off"]
    if disk is not None:
        cmd += ["-drive", f"file={disk},format=raw,if=virtio,cache=writeback"]
    return cmd + list(extra)


class SerialConsole:
    """A client of a guest's serial console on a Unix socket; keeps every line."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)  # polling for QEMU to create its socket
        self._sock = sock
        self._buffer = b""
        self._read = 0
        #: every complete line received so far, without line endings
        self.lines: list[bytes] = []
        self.closed = False

    def _Receive(self, timeout: float) -> None:
        self._sock.settimeout(max(timeout, 0.001))
        try:
            data = self._sock.recv(65536)
        except TimeoutError:
            return
        if not data:
            self.closed = True
            return
        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\n")
        self.lines.extend(line.rstrip(b"\r") for line in complete)

    def WaitFor(self, pattern: re.Pattern[bytes], timeout: float) -> re.Match[bytes]:
        """The first unread line matching ``pattern``; lines before it are read.

        @raise TimeoutError: no such line within ``timeout`` seconds, or the
            console closed first (the message quotes the last lines)
        """
        deadline = time.monotonic() + timeout
        while True:
            while self._read < len(self.lines):
                line = self.lines[self._read]
                self._read += 1
                match = pattern.search(line)
                if match:
                    return match
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed:
                tail = b"\n".join(self.lines[-15:] + [self._buffer]).decode(errors="replace")
                state = "console closed" if self.closed else f"{timeout}s passed"
                raise TimeoutError(f"no line matching {pattern.pattern!r} ({state});"
                                   f" last output:\n{tail}")
            self._Receive(remaining)

    def Close(self) -> None:
        """Disconnect from the console."""
        self._sock.close()


# --- the tool ------------------------------------------------------------------

def BuildParser() -> argparse.ArgumentParser:
    """The command line of make-test-guest."""
    parser = argparse.ArgumentParser(
        prog="make-test-guest",
        description="Build (or reuse) the test guest: DIR/vmlinuz, DIR/initrd.img and"
                    " DIR/manifest.json, from Debian's cloud kernel and busybox-static.")
    parser.add_argument("--dir", type=Path, default=None,
                        help=f"output directory (default: ${DIR_ENV}, else"
                             f" {ROOT_DEFAULT_DIR} as root, else ~/.cache/ganeti-test-guest)")
    parser.add_argument("--force", action="store_true",
                        help="rebuild even when the inputs are unchanged")
    parser.add_argument("--zeroing-image", type=Path, default=None, metavar="PATH",
                        help="also write the zeroing image (a helper image zeroing the"
                             f" disks but the first after their first {ZEROING_KEEP} bytes,"
                             " for gnt-backup export --zero-free-space) to PATH; the"
                             " output names it as zeroing_image")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print nothing but errors")
    return parser


def Main(argv: Sequence[str] | None = None) -> int:
    """Run make-test-guest; print the manifest; return the exit code."""
    options = BuildParser().parse_args(argv)
    if shutil.which("dpkg-deb") is None or shutil.which("apt-get") is None:
        print("make-test-guest: needs dpkg-deb and apt-get (a Debian system)", file=sys.stderr)
        return 1
    log = (lambda msg: None) if options.quiet else None
    try:
        guest = EnsureGuest(options.dir, force=options.force, log=log)
        extra: dict[str, str] = {}
        if options.zeroing_image is not None:
            path = options.zeroing_image.absolute()
            _AtomicWrite(path, ZeroingImage())
            extra["zeroing_image"] = str(path)
    except (GuestBuildError, OSError, subprocess.CalledProcessError) as err:
        print(f"make-test-guest: {err}", file=sys.stderr)
        return 1
    if not options.quiet:
        print(json.dumps({"kernel": str(guest.kernel), "initrd": str(guest.initrd),
                          **guest.manifest, **extra}, indent=2, sort_keys=True))
    return 0
