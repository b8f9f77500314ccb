"""QEMU's command line for a KVM instance: a pure function of its parameters.

:func:`BuildCommandLine` turns an instance's hypervisor parameters, disks,
NICs and per-instance runtime files into the argument list of the QEMU
process, as Ganeti 3.0 drives QEMU: daemonized with a pid file, controlled
over a QMP Unix socket, the serial console on another Unix socket, no local
display (``-display none``), VNC and/or SPICE when a bind address is given,
a virtio balloon for runtime memory changes. Nothing is run, opened or
looked up here: tap devices arrive as open file descriptors (or interface
names), a pool user and interface addresses as arguments.

The syntax is QEMU 7.2's (Debian bookworm's qemu-system-x86), which
removed or deprecated several options Ganeti used; each replacement is
noted where it is made. In short: ``-machine accel=...`` instead of
``-enable-kvm``/``-disable-kvm``, ``-machine acpi=off`` instead of
``-no-acpi``, ``-rtc base=localtime`` instead of ``-localtime``,
``-audio`` instead of ``-soundhw``, a ``virtio-balloon-pci`` device instead of
``-balloon virtio``, ``-device usb-*`` instead of
``-usbdevice``, ``tls-creds`` objects instead of ``-vnc ...,tls,x509=``,
``server=on,wait=off`` instead of ``server,nowait``.

PCI slots: disks and NICs get explicit slots from ``kvm_pci_reservations``
upwards (as Ganeti, so that hotplugged devices find free slots later);
QEMU places its own devices (VGA, balloon, controllers) in the lower,
reserved slots.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from ganeti import constants, errors, pathutils, utils
from ganeti.hypervisor.hv_kvm import params

_C = constants

def KvmRunDir() -> str:
    """Where the KVM hypervisor's per-instance runtime files live.

    Ganeti's layout: ``pid/``, ``ctrl/`` and ``chroot/`` below it.
    """
    return pathutils.RUN_DIR + "/kvm-hypervisor"


#: sun_path holds 108 bytes including the terminating NUL
MAX_UNIX_SOCKET_PATH = 107

_NIC_MODELS = {
    _C.HT_NIC_PARAVIRTUAL: "virtio-net-pci",
    _C.HT_NIC_RTL8139: "rtl8139",
    _C.HT_NIC_NE2K_ISA: "ne2k_isa",
    _C.HT_NIC_NE2K_PCI: "ne2k_pci",
    _C.HT_NIC_I82551: "i82551",
    _C.HT_NIC_I82557B: "i82557b",
    _C.HT_NIC_I82559ER: "i82559er",
    _C.HT_NIC_PCNET: "pcnet",
    _C.HT_NIC_E1000: "e1000",
}
#: NIC models that sit on the ISA bus, not PCI (no slot)
_ISA_NIC_MODELS = frozenset([_C.HT_NIC_NE2K_ISA])
#: disk_type -> QEMU's -drive if= for the types QEMU attaches itself
_DRIVE_INTERFACES = {
    _C.HT_DISK_IDE: "ide",
    _C.HT_DISK_SD: "sd",
    _C.HT_DISK_MTD: "mtd",
    _C.HT_DISK_PFLASH: "pflash",
}
_BOOT_DRIVES = {
    _C.HT_BO_FLOPPY: "a",
    _C.HT_BO_DISK: "c",
    _C.HT_BO_CDROM: "d",
    _C.HT_BO_NETWORK: "n",
}
_SCSI_BUS = "scsi.0"
#: Two IDE buses with two units each (the PC's)
_IDE_UNITS = 4
_SCSI_CONTROLLER_ID = "scsi"
_VIRTIO_SERIAL_ID = "vserial0"
_VNC_TLS_ID = "vnc-tls0"
_GUEST_AGENT_PORT = "org.qemu.guest_agent.0"
_SPICE_AGENT_PORT = "com.redhat.spice.0"
_MAC_RE = re.compile(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}")
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_ID_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_.-]")


class DiskSpec(NamedTuple):
    """One disk: its node-local path, access mode and a name or UUID.

    The name (or UUID) gives the QEMU device id, ``disk-<name>``, by which
    hotplug finds the device again; without one the index is used.
    """

    path: str
    mode: str = _C.DISK_RDWR
    name: str = ""


class NicSpec(NamedTuple):
    """One NIC: its MAC, its tap and a name or UUID.

    ``tap`` is an open tap file descriptor the QEMU process inherits, one
    per queue when ``virtio_net_queues`` is above 1, or the name of a tap
    interface QEMU opens itself.
    """

    mac: str
    tap: int | str | Sequence[int]
    name: str = ""


@dataclasses.dataclass(frozen=True)
class RuntimeFiles:
    """The per-instance files QEMU is told about.

    ``events_qmp`` is a second QMP socket for whoever watches the guest's
    events (a user shutdown, with ``user_shutdown``): a QMP socket serves
    one client at a time, and the one in ``qmp`` belongs to the node's
    commands. ``guest_agent`` is the socket of the QEMU guest agent
    (``use_guest_agent``); ``chroot`` the empty directory QEMU chroots to
    (``use_chroot``).
    """

    pidfile: str
    qmp: str
    serial: str
    events_qmp: str | None = None
    guest_agent: str | None = None
    chroot: str | None = None

    @classmethod
    def ForInstance(cls, name: str, run_dir: str | None = None) -> RuntimeFiles:
        """The files of instance ``name`` in Ganeti's layout below ``run_dir``."""
        base = run_dir or KvmRunDir()
        ctrl = f"{base}/ctrl/{name}"
        return cls(pidfile=f"{base}/pid/{name}", qmp=f"{ctrl}.qmp",
                   serial=f"{ctrl}.serial", events_qmp=f"{ctrl}.kvmd",
                   guest_agent=f"{ctrl}.qga", chroot=f"{base}/chroot/{name}")


def _Fail(msg: str) -> errors.HypervisorError:
    return errors.HypervisorError(msg)


def _Esc(value: Any) -> str:
    """Quote a value inside a QEMU option list (a comma is doubled)."""
    return str(value).replace(",", ",,")


def _Opts(*parts: str) -> str:
    return ",".join(part for part in parts if part)


def _UnixServer(path: str) -> str:
    """A listening Unix socket chardev (server=on,wait=off: QEMU 7.2 no
    longer wants the bare ``server,nowait`` flags)."""
    if len(path.encode()) > MAX_UNIX_SOCKET_PATH:
        raise _Fail(f"Unix socket path too long for QEMU ({len(path.encode())} >"
                    f" {MAX_UNIX_SOCKET_PATH} bytes): {path}")
    return f"unix:{_Esc(path)},server=on,wait=off"


def DeviceIdFor(prefix: str, name: str) -> str:
    """The QEMU device id of a disk (``prefix`` "disk") or NIC ("nic") named
    (or with UUID) ``name``, as the command line and hotplug give it."""
    return f"{prefix}-{_ID_UNSAFE_RE.sub('-', name)}"


def _DeviceId(prefix: str, name: str, index: int, used: set[str]) -> str:
    dev_id = DeviceIdFor(prefix, name) if name else f"{prefix}-{index}"
    if dev_id in used:
        raise _Fail(f"Two devices would have the QEMU id '{dev_id}'; give them"
                    " different names")
    used.add(dev_id)
    return dev_id


class _PciSlots:
    """Hands out the PCI slots from kvm_pci_reservations upwards."""

    def __init__(self, reservations: int):
        self._slots: Iterator[int] = iter(range(reservations, _C.QEMU_PCI_SLOTS))
        self._reservations = reservations

    def Next(self) -> str:
        try:
            return f"addr={next(self._slots):#x}"
        except StopIteration:
            raise _Fail(f"Too many disks and NICs for the PCI slots left above"
                        f" kvm_pci_reservations={self._reservations}"
                        f" ({_C.QEMU_PCI_SLOTS} slots in all)") from None


def _HostPort(host: str, port: int | str) -> str:
    if utils.IsValidIP6(host):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def _ResolveBind(param: str, value: str, bind_addresses: Mapping[str, str]) -> str:
    """An IP address as is; an interface name through ``bind_addresses``."""
    if utils.IsValidIP(value):
        return value
    address = bind_addresses.get(value)
    if not address:
        raise _Fail(f"{param} names interface '{value}', but no address was given"
                    " for it")
    return address


def _NetworkPort(param: str, network_port: int | None) -> int:
    if network_port is None:
        raise _Fail(f"{param} is set but the instance has no network port")
    return network_port


# --- Pieces of the command line ---------------------------------------------------


def _Smp(hvp: Mapping[str, Any], vcpus: int) -> str:
    parts = [str(vcpus)]
    for name, key in ((_C.HV_CPU_SOCKETS, "sockets"), (_C.HV_CPU_CORES, "cores"),
                      (_C.HV_CPU_THREADS, "threads")):
        if hvp[name]:
            parts.append(f"{key}={hvp[name]}")
    return ",".join(parts)


def _Machine(hvp: Mapping[str, Any]) -> list[str]:
    # The accelerator goes into -machine: kvm_flag=disabled must give TCG
    # even when QEMU runs as "kvm" (which picks KVM by itself), and
    # -enable-kvm/-disable-kvm are never passed
    accel = {_C.KVM_FLAG_ENABLED: "accel=kvm",
             _C.KVM_FLAG_DISABLED: "accel=tcg"}.get(hvp[_C.HV_KVM_FLAG], "")
    # acpi=off rather than -no-acpi, which later QEMU releases deprecate
    acpi = "" if hvp[_C.HV_ACPI] else "acpi=off"
    value = _Opts(hvp[_C.HV_MACHINE_VERSION], accel, acpi)
    return ["-machine", value] if value else []


def _Cpu(hvp: Mapping[str, Any]) -> list[str]:
    model = hvp[_C.HV_CPU_TYPE]
    if hvp[_C.HV_PAE]:
        # A feature flag needs a model: QEMU's own default for x86_64 guests.
        # pae=false adds nothing (taking PAE away breaks 64-bit guests).
        return ["-cpu", f"{model or 'qemu64'},+pae"]
    return ["-cpu", model] if model else []


def _Vnc(hvp: Mapping[str, Any], network_port: int | None,
         bind_addresses: Mapping[str, str]) -> list[str]:
    bind = hvp[_C.HV_VNC_BIND_ADDRESS]
    if not bind:
        return []
    argv: list[str] = []
    if utils.IsNormAbsPath(bind):
        display = f"unix:{_Esc(bind)}"
    else:
        address = _ResolveBind(_C.HV_VNC_BIND_ADDRESS, bind, bind_addresses)
        port = _NetworkPort(_C.HV_VNC_BIND_ADDRESS, network_port)
        if port < _C.VNC_BASE_PORT:
            raise _Fail(f"VNC needs a network port from {_C.VNC_BASE_PORT} (display ="
                        f" port - {_C.VNC_BASE_PORT}), got {port}")
        display = _HostPort(address, port - _C.VNC_BASE_PORT)
    options = [display]
    if hvp[_C.HV_VNC_TLS]:
        # QEMU 7.2 takes TLS settings from a tls-creds object (the old
        # ",tls,x509=DIR,x509verify=DIR" options are gone)
        x509_dir = hvp[_C.HV_VNC_X509]
        if x509_dir:
            verify = "on" if hvp[_C.HV_VNC_X509_VERIFY] else "off"
            creds = (f"tls-creds-x509,id={_VNC_TLS_ID},dir={_Esc(x509_dir)},"
                     f"endpoint=server,verify-peer={verify}")
        else:
            creds = f"tls-creds-anon,id={_VNC_TLS_ID},endpoint=server"
        argv += ["-object", creds]
        options.append(f"tls-creds={_VNC_TLS_ID}")
    if hvp[_C.HV_VNC_PASSWORD_FILE]:
        # The password itself is set over QMP after start, never on argv
        options.append("password=on")
    return argv + ["-vnc", ",".join(options)]


def _Spice(hvp: Mapping[str, Any], network_port: int | None,
           bind_addresses: Mapping[str, str]) -> list[str]:
    bind = hvp[_C.HV_KVM_SPICE_BIND]
    if not bind:
        return []
    address = _ResolveBind(_C.HV_KVM_SPICE_BIND, bind, bind_addresses)
    port = _NetworkPort(_C.HV_KVM_SPICE_BIND, network_port)
    options = [f"addr={_Esc(address)}"]
    if hvp[_C.HV_KVM_SPICE_USE_TLS]:
        options += [f"tls-port={port}",
                    f"x509-cacert-file={_Esc(pathutils.SPICE_CACERT_FILE)}",
                    f"x509-key-file={_Esc(pathutils.SPICE_CERT_FILE)}",
                    f"x509-cert-file={_Esc(pathutils.SPICE_CERT_FILE)}"]
        if hvp[_C.HV_KVM_SPICE_TLS_CIPHERS]:
            options.append(f"tls-ciphers={_Esc(hvp[_C.HV_KVM_SPICE_TLS_CIPHERS])}")
    else:
        options.append(f"port={port}")
    version = hvp[_C.HV_KVM_SPICE_IP_VERSION]
    if version == _C.IP4_VERSION:
        options.append("ipv4=on")
    elif version == _C.IP6_VERSION:
        options.append("ipv6=on")
    if not hvp[_C.HV_KVM_SPICE_PASSWORD_FILE]:
        options.append("disable-ticketing=on")
    # else: the password is set over QMP after start, never on argv
    for name, key in ((_C.HV_KVM_SPICE_LOSSLESS_IMG_COMPR, "image-compression"),
                      (_C.HV_KVM_SPICE_JPEG_IMG_COMPR, "jpeg-wan-compression"),
                      (_C.HV_KVM_SPICE_ZLIB_GLZ_IMG_COMPR, "zlib-glz-wan-compression"),
                      (_C.HV_KVM_SPICE_STREAMING_VIDEO_DETECTION, "streaming-video")):
        if hvp[name]:
            options.append(f"{key}={hvp[name]}")
    options.append("playback-compression=" + ("on" if hvp[_C.HV_KVM_SPICE_AUDIO_COMPR]
                                              else "off"))
    return ["-spice", ",".join(options)]


def _Boot(hvp: Mapping[str, Any]) -> list[str]:
    kernel = hvp[_C.HV_KERNEL_PATH]
    if not kernel:
        return ["-boot", "order=" + _BOOT_DRIVES[hvp[_C.HV_BOOT_ORDER]]]
    # With a kernel, boot_order is ignored (as the man page says)
    argv = ["-kernel", kernel]
    if hvp[_C.HV_INITRD_PATH]:
        argv += ["-initrd", hvp[_C.HV_INITRD_PATH]]
    append = []
    if hvp[_C.HV_ROOT_PATH]:
        append.append(f"root={hvp[_C.HV_ROOT_PATH]}")
    if hvp[_C.HV_KERNEL_ARGS]:
        append.append(hvp[_C.HV_KERNEL_ARGS])
    if hvp[_C.HV_SERIAL_CONSOLE]:
        append.append(f"console=ttyS0,{hvp[_C.HV_SERIAL_SPEED]}")
    if append:
        argv += ["-append", " ".join(append)]
    return argv


def _DriveCacheOptions(hvp: Mapping[str, Any]) -> str:
    cache = hvp[_C.HV_DISK_CACHE]
    return _Opts("" if cache == _C.HT_CACHE_DEFAULT else f"cache={cache}",
                 f"aio={hvp[_C.HV_KVM_DISK_AIO]}" if hvp[_C.HV_KVM_DISK_AIO] else "",
                 f"discard={hvp[_C.HV_DISK_DISCARD]}" if hvp[_C.HV_DISK_DISCARD] else "")


def DriveOptions(hvp: Mapping[str, Any], readonly: bool = False) -> str:
    """A hard disk's drive options but its file, interface and id (for a
    hotplugged disk: HMP ``drive_add``)."""
    return _Opts("format=raw", _DriveCacheOptions(hvp), "readonly=on" if readonly else "")


def NicModel(hvp: Mapping[str, Any]) -> str:
    """QEMU's device of the instance's ``nic_type``."""
    return _NIC_MODELS[hvp[_C.HV_NIC_TYPE]]


class _Devices:
    """Collects drives and devices with their ids, PCI slots and controllers."""

    def __init__(self, hvp: Mapping[str, Any]):
        self.hvp = hvp
        self.argv: list[str] = []
        self.slots = _PciSlots(hvp[_C.HV_KVM_PCI_RESERVATIONS])
        self.ids: set[str] = set()
        self._scsi = False

    def _ScsiController(self) -> None:
        if not self._scsi:
            controller = self.hvp[_C.HV_KVM_SCSI_CONTROLLER_TYPE] or _C.HT_SCSI_CONTROLLER_LSI
            self.argv += ["-device", f"{controller},id={_SCSI_CONTROLLER_ID}"]
            self._scsi = True

    def AddDrive(self, disk_type: str, path: str, dev_id: str, readonly: bool,
                 cdrom: bool = False, bootindex: int | None = None) -> None:
        drive = _Opts(f"file={_Esc(path)}", "format=raw",
                      "media=cdrom" if cdrom else "",
                      "" if cdrom else _DriveCacheOptions(self.hvp),
                      "readonly=on" if readonly else "")
        boot = f"bootindex={bootindex}" if bootindex is not None else ""
        if disk_type == _C.HT_DISK_PARAVIRTUAL:
            self.argv += ["-drive", f"{drive},if=none,id={dev_id}",
                          "-device", _Opts(f"virtio-blk-pci,drive={dev_id},id={dev_id}",
                                           self.slots.Next(), boot)]
        elif disk_type == _C.HT_DISK_SCSI:
            self._ScsiController()
            kind = "scsi-cd" if cdrom else "scsi-hd"
            self.argv += ["-drive", f"{drive},if=none,id={dev_id}",
                          "-device", _Opts(f"{kind},drive={dev_id},id={dev_id},"
                                           f"bus={_SCSI_BUS}", boot)]
        else:
            if readonly and not cdrom and disk_type == _C.HT_DISK_IDE:
                raise _Fail(f"QEMU cannot attach read-only disk {path} as an IDE hard"
                            " disk; use disk_type paravirtual or scsi")
            self.argv += ["-drive", f"{drive},if={_DRIVE_INTERFACES[disk_type]}"]

    def AddNic(self, index: int, nic: NicSpec) -> None:
        hvp = self.hvp
        mac, tap, name = nic
        if not isinstance(mac, str) or not _MAC_RE.fullmatch(mac):
            raise _Fail(f"Invalid MAC address {mac!r} of NIC {index}")
        nic_type = hvp[_C.HV_NIC_TYPE]
        dev_id = _DeviceId("nic", name, index, self.ids)
        virtio = nic_type == _C.HT_NIC_PARAVIRTUAL
        queues = hvp[_C.HV_VIRTIO_NET_QUEUES] if virtio else 1
        if isinstance(tap, str):
            netdev = [f"tap,id={dev_id},ifname={_Esc(tap)},script=no,downscript=no"]
            if queues > 1:
                netdev.append(f"queues={queues}")
        else:
            fds = [tap] if isinstance(tap, int) else list(tap)
            if not fds or len(fds) != queues:
                raise _Fail(f"NIC {index} needs {queues} tap file descriptor(s)"
                            f" (virtio_net_queues), got {len(fds)}")
            netdev = [f"tap,id={dev_id},fd={fds[0]}" if len(fds) == 1
                      else f"tap,id={dev_id},fds={':'.join(map(str, fds))}"]
        device = [f"{_NIC_MODELS[nic_type]},netdev={dev_id},id={dev_id},mac={mac}"]
        if virtio:
            if hvp[_C.HV_VHOST_NET]:
                netdev.append("vhost=on")
            if not hvp[_C.HV_VNET_HDR]:
                # Only matters when QEMU opens the tap itself; an fd
                # carries the flag it was opened with
                netdev.append("vnet_hdr=off")
            if queues > 1:
                device.append(f"mq=on,vectors={2 * queues + 2}")
        if nic_type not in _ISA_NIC_MODELS:
            device.append(self.slots.Next())
        self.argv += ["-netdev", ",".join(netdev), "-device", ",".join(device)]


def _DisksAndNics(hvp: Mapping[str, Any], disks: Sequence[DiskSpec | tuple],
                  nics: Sequence[NicSpec | tuple]) -> list[str]:
    devices = _Devices(hvp)
    disk_type = hvp[_C.HV_DISK_TYPE]
    for index, disk in enumerate(disks):
        path, mode, name = DiskSpec(*disk)
        if mode not in _C.DISK_ACCESS_SET:
            raise _Fail(f"Invalid access mode {mode!r} of disk {index} (expected"
                        f" {' or '.join(sorted(_C.DISK_ACCESS_SET))})")
        devices.AddDrive(disk_type, path, _DeviceId("disk", name, index, devices.ids),
                         readonly=mode == _C.DISK_RDONLY)
    cdrom_type = hvp[_C.HV_KVM_CDROM_DISK_TYPE] or disk_type
    boot_cdrom = (hvp[_C.HV_BOOT_ORDER] == _C.HT_BO_CDROM and not hvp[_C.HV_KERNEL_PATH])
    for index, param in enumerate((_C.HV_CDROM_IMAGE_PATH, _C.HV_KVM_CDROM2_IMAGE_PATH)):
        if hvp[param]:
            # "-boot order=d" finds IDE and SCSI CD-ROMs; a virtio one needs a
            # boot index. Only the first image boots (as the man page says).
            bootindex = (0 if boot_cdrom and index == 0
                         and cdrom_type == _C.HT_DISK_PARAVIRTUAL else None)
            devices.AddDrive(cdrom_type, hvp[param], f"cdrom{index}", readonly=True,
                             cdrom=True, bootindex=bootindex)
    ide_units = (len(disks) if disk_type == _C.HT_DISK_IDE else 0) + sum(
        1 for param in (_C.HV_CDROM_IMAGE_PATH, _C.HV_KVM_CDROM2_IMAGE_PATH)
        if hvp[param] and cdrom_type == _C.HT_DISK_IDE)
    if ide_units > _IDE_UNITS:
        raise _Fail(f"{ide_units} IDE disks and CD-ROMs, but IDE has {_IDE_UNITS} units;"
                    " use disk_type or cdrom_disk_type paravirtual or scsi")
    if hvp[_C.HV_KVM_FLOPPY_IMAGE_PATH]:
        devices.argv += ["-drive", f"file={_Esc(hvp[_C.HV_KVM_FLOPPY_IMAGE_PATH])},"
                                   "format=raw,if=floppy,readonly=on"]
    for index, nic in enumerate(nics):
        devices.AddNic(index, NicSpec(*nic))
    if not nics:
        # Else QEMU adds a NIC of its own (user networking), as Ganeti avoids
        devices.argv += ["-net", "none"]
    return devices.argv


def _Usb(hvp: Mapping[str, Any]) -> list[str]:
    mouse = hvp[_C.HV_USB_MOUSE]
    if not mouse and hvp[_C.HV_VNC_BIND_ADDRESS]:
        # As Ganeti: a tablet keeps the VNC pointer in step with the guest's
        mouse = _C.HT_MOUSE_TABLET
    specs = [params.USB_DEVICE_NAMES[mouse]] if mouse else []
    try:
        specs += [params.UsbDeviceSpec(word) for word in hvp[_C.HV_USB_DEVICES].split()]
    except errors.ParseError as err:
        raise _Fail(f"Invalid usb_devices: {err}") from None
    if not specs:
        return []
    # -device rather than -usbdevice: QEMU 7.2 takes only bare names there
    argv = ["-usb"]
    for spec in specs:
        argv += ["-device", spec]
    return argv


def _VirtioSerial(hvp: Mapping[str, Any], files: RuntimeFiles) -> list[str]:
    ports: list[str] = []
    if hvp[_C.HV_KVM_USE_GUEST_AGENT]:
        if not files.guest_agent:
            raise _Fail("use_guest_agent is set but no guest agent socket was given")
        ports += ["-chardev", f"socket,id=qga0,path={_Esc(files.guest_agent)},"
                              "server=on,wait=off",
                  "-device", f"virtserialport,bus={_VIRTIO_SERIAL_ID}.0,chardev=qga0,"
                             f"name={_GUEST_AGENT_PORT}"]
    if hvp[_C.HV_KVM_SPICE_BIND] and hvp[_C.HV_KVM_SPICE_USE_VDAGENT]:
        ports += ["-chardev", "spicevmc,id=vdagent0,name=vdagent",
                  "-device", f"virtserialport,bus={_VIRTIO_SERIAL_ID}.0,chardev=vdagent0,"
                             f"name={_SPICE_AGENT_PORT}"]
    if not ports:
        return []
    return ["-device", f"virtio-serial-pci,id={_VIRTIO_SERIAL_ID}"] + ports


def _Security(hvp: Mapping[str, Any], files: RuntimeFiles,
              runas_user: str | None) -> list[str]:
    argv: list[str] = []
    model = hvp[_C.HV_SECURITY_MODEL]
    if model == _C.HT_SM_USER:
        argv += ["-runas", hvp[_C.HV_SECURITY_DOMAIN]]
    elif model == _C.HT_SM_POOL:
        if not runas_user:
            raise _Fail("Security model 'pool' needs a user from the uid pool")
        argv += ["-runas", runas_user]
    if hvp[_C.HV_KVM_USE_CHROOT]:
        if not files.chroot:
            raise _Fail("use_chroot is set but no chroot directory was given")
        argv += ["-chroot", files.chroot]
    return argv


# --- The whole command line ---------------------------------------------------------


def FillParameters(hvparams: Mapping[str, Any]) -> dict[str, Any]:
    """The KVM defaults overlaid with ``hvparams``."""
    return {**_C.HVC_DEFAULTS[_C.HT_KVM], **hvparams}


def BuildCommandLine(name: str, uuid: str, memory: int, vcpus: int,
                     hvparams: Mapping[str, Any],
                     disks: Sequence[DiskSpec | tuple],
                     nics: Sequence[NicSpec | tuple],
                     files: RuntimeFiles, *,
                     network_port: int | None = None,
                     incoming_address: str | None = None,
                     runas_user: str | None = None,
                     bind_addresses: Mapping[str, str] | None = None,
                     paused: bool = False) -> list[str]:
    """Return QEMU's argv (argv[0] is ``kvm_path``) for an instance.

    @param memory: MiB (the instance's maximum; the balloon lowers it)
    @param hvparams: the instance's hypervisor parameters (missing ones
        take the KVM defaults); checked again here
    @param disks: :class:`DiskSpec` (or plain tuples) in instance order
    @param nics: :class:`NicSpec` (or plain tuples) in instance order
    @param network_port: the instance's port, for VNC (display = port -
        5900) and SPICE
    @param incoming_address: wait for an incoming migration on this address
        and ``migration_port``
    @param runas_user: the uid pool's user (security_model=pool)
    @param bind_addresses: interface name -> address, for
        ``vnc_bind_address``/``spice_bind`` naming an interface
    @param paused: start with the vCPUs stopped (``-S``)
    @raise errors.HypervisorError: for what QEMU could not be given
    """
    hvp = FillParameters(hvparams)
    # Cheap, and what follows relies on it (e.g. nic_type being known)
    from ganeti.hypervisor.hv_kvm import KVMHypervisor
    KVMHypervisor.CheckParameterSyntax(hvp)
    bind_addresses = bind_addresses or {}
    if not _UUID_RE.fullmatch(uuid or ""):
        raise _Fail(f"Invalid instance UUID {uuid!r}")
    if not isinstance(memory, int) or memory <= 0:
        raise _Fail(f"Invalid memory size {memory!r} (MiB)")
    if not isinstance(vcpus, int) or vcpus <= 0:
        raise _Fail(f"Invalid number of vCPUs {vcpus!r}")
    params.CheckVcpus(hvp, vcpus)

    argv = [hvp[_C.HV_KVM_PATH], "-name", _Esc(name), "-uuid", uuid,
            "-m", str(memory), "-smp", _Smp(hvp, vcpus),
            "-pidfile", files.pidfile, "-daemonize"]
    if paused:
        argv.append("-S")
    argv += _Machine(hvp) + _Cpu(hvp)
    argv += ["-qmp", _UnixServer(files.qmp)]
    if hvp[_C.HV_KVM_USER_SHUTDOWN]:
        if not files.events_qmp:
            raise _Fail("user_shutdown is set but no second QMP socket was given")
        # A guest's own shutdown leaves QEMU (stopped) for the node to see
        argv += ["-qmp", _UnixServer(files.events_qmp), "-no-shutdown"]
    argv += ["-serial", _UnixServer(files.serial) if hvp[_C.HV_SERIAL_CONSOLE] else "none"]
    # -display none, not -nographic (which would put the serial port and the
    # monitor on stdio, and which -daemonize refuses)
    argv += ["-display", "none"]
    argv += _Vnc(hvp, network_port, bind_addresses)
    argv += _Spice(hvp, network_port, bind_addresses)
    if hvp[_C.HV_KEYMAP]:
        argv += ["-k", hvp[_C.HV_KEYMAP]]
    vga = hvp[_C.HV_VGA] or ("qxl" if hvp[_C.HV_KVM_SPICE_BIND] else "")
    if vga:
        argv += ["-vga", vga]
    argv += _Boot(hvp)
    # Devices with explicit PCI slots before the ones QEMU places itself
    argv += _DisksAndNics(hvp, disks, nics)
    # A device: QEMU 7.2 rejects the old "-balloon virtio"
    argv += ["-device", "virtio-balloon-pci,id=balloon"]
    argv += _Usb(hvp)
    argv += _VirtioSerial(hvp, files)
    if hvp[_C.HV_SOUNDHW]:
        # -audio replaces -soundhw, which QEMU 7.2 rejects; the sound goes to
        # the SPICE client when there is one, else nowhere
        driver = "spice" if hvp[_C.HV_KVM_SPICE_BIND] else "none"
        argv += ["-audio", f"{driver},model={hvp[_C.HV_SOUNDHW]}"]
    if hvp[_C.HV_USE_LOCALTIME]:
        # -rtc base=localtime: QEMU 7.2 rejects the old -localtime
        argv += ["-rtc", "base=localtime"]
    argv += _Security(hvp, files, runas_user)
    if hvp[_C.HV_MEM_PATH]:
        argv += ["-mem-path", hvp[_C.HV_MEM_PATH], "-mem-prealloc"]
    if hvp[_C.HV_REBOOT_BEHAVIOR] == _C.INSTANCE_REBOOT_EXIT:
        argv.append("-no-reboot")
    if incoming_address:
        argv += ["-incoming",
                 "tcp:" + _HostPort(incoming_address, hvp[_C.HV_MIGRATION_PORT])]
    if hvp[_C.HV_KVM_EXTRA]:
        try:
            argv += shlex.split(hvp[_C.HV_KVM_EXTRA])
        except ValueError as err:
            raise _Fail(f"Invalid kvm_extra: {err}") from None
    return argv
