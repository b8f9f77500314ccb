"""The KVM hypervisor's parameters: declarations, syntax and node checks.

``PARAMETERS`` declares every KVM hypervisor parameter of Ganeti 3.0 (names
and defaults in ``constants.HVC_DEFAULTS[HT_KVM]``) the way
:mod:`ganeti.hypervisor.base` expects: name -> ``(required, check_fn,
check_msg, validate_fn, validate_msg)``. The check looks at one value and
runs on the master; the validation looks at the node (files, users,
devices) and runs on each node.

What one value cannot tell is checked here too:

- :func:`CheckCrossParameters` (master): parameters that depend on one
  another, e.g. ``security_domain`` only under ``security_model=user``,
  the VNC options only with a ``vnc_bind_address``, the SPICE options only
  with a ``spice_bind``.
- :func:`CheckVcpus` (master, and before building a command line): the
  parameters that depend on the instance's number of vCPUs (``cpu_mask``
  with one entry per vCPU, the ``cpu_*`` topology).
- :func:`ValidateNodeParameters` (node): what needs the node beyond single
  files: a bind interface exists, a TLS directory holds its files, the
  QEMU binary knows the machine type and SPICE.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from ganeti import constants, errors, pathutils, utils
from ganeti.hypervisor import base

_C = constants

# --- Value checks (one value each) ------------------------------------------------


def IsBool(value: Any) -> bool:
    """Whether ``value`` is a boolean (not merely truthy)."""
    return isinstance(value, bool)


def _IsInt(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _IntInRange(low: int, high: int | None = None) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return _IsInt(value) and value >= low and (high is None or value <= high)
    return check


def _Matches(pattern: str) -> Callable[[Any], bool]:
    regex = re.compile(pattern)

    def check(value: Any) -> bool:
        return isinstance(value, str) and regex.fullmatch(value) is not None
    return check


def _IsString(value: Any) -> bool:
    return isinstance(value, str)


def _IsToken(value: Any) -> bool:
    """A non-empty string without whitespace (one word on a command line)."""
    return isinstance(value, str) and bool(value) and not any(c.isspace() for c in value)


#: Linux interface names: up to 15 characters, no "/" or whitespace
_IsInterfaceName = _Matches(r"(?!\.{1,2}$)[^/\s:]{1,15}")


def IsUrl(value: Any) -> bool:
    """Whether ``value`` is a URL QEMU's block layer may read."""
    return isinstance(value, str) and re.fullmatch(
        r"(https?|ftps?|tftp)://[^\s]+", value) is not None


def _IsPathOrUrl(value: Any) -> bool:
    return utils.IsNormAbsPath(value) or IsUrl(value)


def _FileExistsUnlessUrl(value: Any) -> bool:
    return IsUrl(value) or os.path.isfile(value)


def IsVncBindAddress(value: Any) -> bool:
    """An IP address, an interface name or an absolute path (a Unix socket)."""
    return (utils.IsValidIP(value) or utils.IsNormAbsPath(value)
            or _IsInterfaceName(value))


def _IsSpiceBind(value: Any) -> bool:
    return utils.IsValidIP(value) or _IsInterfaceName(value)


def _InterfaceExists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def _BindTargetExists(value: Any) -> bool:
    """An address or path is fine; an interface name must exist on the node."""
    if utils.IsValidIP(value) or utils.IsNormAbsPath(value):
        return True
    return _InterfaceExists(value)


def _UserExists(name: Any) -> bool:
    try:
        pwd.getpwnam(name)
    except (KeyError, TypeError):
        return False
    return True


#: The device vhost_net needs (the vhost_net kernel module creates it)
VHOST_NET_DEVICE = "/dev/vhost-net"


def _VhostDeviceExists(enabled: Any) -> bool:
    return not enabled or os.path.exists(VHOST_NET_DEVICE)


def ParseCpuMask(value: str) -> list[int] | None:
    """Parse one CPU list ("all", "0-2,5") into CPU numbers; None means all.

    @raise errors.ParseError: naming what is wrong
    """
    if value == constants.CPU_PINNING_ALL:
        return None
    cpus: list[int] = []
    for item in value.split(","):
        low, dash, high = item.strip().partition("-")
        try:
            first = int(low)
            last = int(high) if dash else first
        except ValueError:
            raise errors.ParseError(f"Invalid CPU number or range '{item}'") from None
        if first < 0 or last < first:
            raise errors.ParseError(f"Invalid CPU range '{item}'")
        cpus.extend(range(first, last + 1))
    return cpus


def ParseMultiCpuMask(value: str) -> list[list[int] | None]:
    """Parse ``cpu_mask``: one CPU list, or one per vCPU separated by ":".

    Each entry is a list of CPU numbers, or None for "all".

    @raise errors.ParseError: naming what is wrong
    """
    if not isinstance(value, str) or not value:
        raise errors.ParseError("Empty CPU mask")
    return [ParseCpuMask(part) for part in value.split(":")]


def _IsCpuMask(value: Any) -> bool:
    try:
        ParseMultiCpuMask(value)
    except errors.ParseError:
        return False
    return True


def _IsShellWords(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        shlex.split(value)
    except ValueError:
        return False
    return True


#: usb_devices words: QEMU 7.2 accepts ``-usbdevice`` only for these names
#: (the forms with parameters, such as "host:1.2", were removed), so each
#: word becomes ``-device``: a name below, "host:BUS.ADDR",
#: "host:VENDOR:PRODUCT" or a device spec starting with "usb-"
USB_DEVICE_NAMES = {
    "mouse": "usb-mouse",
    "tablet": "usb-tablet",
    "keyboard": "usb-kbd",
    "wacom-tablet": "usb-wacom-tablet",
    "braille": "usb-braille",
}
_USB_HOST_BUS_ADDR = re.compile(r"host:(\d+)\.(\d+)")
_USB_HOST_IDS = re.compile(r"host:([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4})")
_USB_DEVICE_SPEC = re.compile(r"usb-[a-z0-9-]+(,[^\s,]+=[^\s,]*)*")


def UsbDeviceSpec(word: str) -> str:
    """The ``-device`` argument for one word of ``usb_devices``.

    @raise errors.ParseError: for a word of no known form
    """
    if word in USB_DEVICE_NAMES:
        return USB_DEVICE_NAMES[word]
    match = _USB_HOST_BUS_ADDR.fullmatch(word)
    if match:
        return f"usb-host,hostbus={int(match[1])},hostaddr={int(match[2])}"
    match = _USB_HOST_IDS.fullmatch(word)
    if match:
        return f"usb-host,vendorid=0x{match[1].lower()},productid=0x{match[2].lower()}"
    if _USB_DEVICE_SPEC.fullmatch(word):
        return word
    raise errors.ParseError(f"Unknown USB device '{word}'")


def _IsUsbDevices(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        for word in value.split():
            UsbDeviceSpec(word)
    except errors.ParseError:
        return False
    return True


# --- Declarations ---------------------------------------------------------------------


def _Opt(check: Callable[[Any], bool], msg: str,
         validate: Callable[[Any], bool] | None = None,
         validate_msg: str | None = None) -> base.ParamCheck:
    return (False, check, msg, validate, validate_msg)


def _Req(check: Callable[[Any], bool], msg: str) -> base.ParamCheck:
    return (True, check, msg, None, None)


def _InSet(required: bool, values: Any, what: str = "") -> base.ParamCheck:
    """Like base.ParamInSet, with the values in a stable order."""
    shown = ", ".join(sorted(v for v in values if v))

    def check(value: Any) -> bool:
        # isinstance first: a list is unhashable, and True would equal 1
        return isinstance(value, str) and value in values
    return (required, check, f"must be one of {shown}{what}", None, None)


_BOOL = _Opt(IsBool, "must be a boolean (true or false)")
_NONNEG_INT = _Opt(_IntInRange(0), "must be a non-negative integer")
_PATH_MSG = "must be an absolute normalized path"
_OPT_PATH_OR_URL = _Opt(_IsPathOrUrl, _PATH_MSG + " or an http(s)/ftp(s)/tftp URL",
                        _FileExistsUnlessUrl, "not found or not a file")

PARAMETERS: dict[str, base.ParamCheck] = {
    _C.HV_KVM_PATH: (True, utils.IsNormAbsPath, _PATH_MSG,
                     utils.IsExecutable, "not found or not an executable file"),
    _C.HV_KERNEL_PATH: base.OPT_FILE_CHECK,
    _C.HV_INITRD_PATH: base.OPT_FILE_CHECK,
    _C.HV_ROOT_PATH: _Opt(_IsToken, "must be one word (a device such as /dev/vda1)"),
    _C.HV_KERNEL_ARGS: _Opt(_Matches(r"[^\n\r]*"), "must be one line of kernel arguments"),
    _C.HV_ACPI: _BOOL,
    _C.HV_PAE: _BOOL,
    _C.HV_SERIAL_CONSOLE: _BOOL,
    _C.HV_SERIAL_SPEED: _Opt(_IntInRange(1), "must be a positive integer (bit/s)"),
    _C.HV_VNC_BIND_ADDRESS: _Opt(
        IsVncBindAddress, "must be an IP address, an interface name or an absolute path",
        _BindTargetExists, "no such network interface on this node"),
    _C.HV_VNC_TLS: _BOOL,
    _C.HV_VNC_X509: base.OPT_DIR_CHECK,
    _C.HV_VNC_X509_VERIFY: _BOOL,
    _C.HV_VNC_PASSWORD_FILE: (False, utils.IsNormAbsPath,
                              "must be an absolute normalized path",
                              lambda path: os.path.isfile(_NodeVncPasswordFile(path)),
                              "not found or not a file"),
    _C.HV_KVM_SPICE_BIND: _Opt(
        _IsSpiceBind, "must be an IP address or an interface name",
        _BindTargetExists, "no such network interface on this node"),
    _C.HV_KVM_SPICE_IP_VERSION: _Opt(
        lambda value: _IsInt(value) and value in (_C.IFACE_NO_IP_VERSION_SPECIFIED,
                                                  *_C.VALID_IP_VERSIONS),
        "must be 4, 6, or 0 (not specified)"),
    _C.HV_KVM_SPICE_PASSWORD_FILE: base.OPT_FILE_CHECK,
    _C.HV_KVM_SPICE_LOSSLESS_IMG_COMPR: _InSet(
        False, _C.HT_KVM_SPICE_VALID_LOSSLESS_IMG_COMPR_OPTIONS),
    _C.HV_KVM_SPICE_JPEG_IMG_COMPR: _InSet(
        False, _C.HT_KVM_SPICE_VALID_LOSSY_IMG_COMPR_OPTIONS),
    _C.HV_KVM_SPICE_ZLIB_GLZ_IMG_COMPR: _InSet(
        False, _C.HT_KVM_SPICE_VALID_LOSSY_IMG_COMPR_OPTIONS),
    _C.HV_KVM_SPICE_STREAMING_VIDEO_DETECTION: _InSet(
        False, _C.HT_KVM_SPICE_VALID_VIDEO_STREAM_DETECTION_OPTIONS),
    _C.HV_KVM_SPICE_AUDIO_COMPR: _BOOL,
    _C.HV_KVM_SPICE_USE_TLS: _BOOL,
    _C.HV_KVM_SPICE_TLS_CIPHERS: _Opt(_IsToken, "must be an OpenSSL cipher list"
                                      " without spaces (see ciphers(1))"),
    _C.HV_KVM_SPICE_USE_VDAGENT: _BOOL,
    _C.HV_KVM_FLOPPY_IMAGE_PATH: base.OPT_FILE_CHECK,
    _C.HV_CDROM_IMAGE_PATH: _OPT_PATH_OR_URL,
    _C.HV_KVM_CDROM2_IMAGE_PATH: _OPT_PATH_OR_URL,
    _C.HV_BOOT_ORDER: _InSet(True, _C.HT_KVM_VALID_BO_TYPES),
    _C.HV_NIC_TYPE: _InSet(True, _C.HT_KVM_VALID_NIC_TYPES),
    _C.HV_DISK_TYPE: _InSet(True, _C.HT_KVM_VALID_DISK_TYPES),
    _C.HV_KVM_CDROM_DISK_TYPE: _InSet(False, _C.HT_KVM_VALID_DISK_TYPES,
                                      " (or empty: as disk_type)"),
    _C.HV_KVM_SCSI_CONTROLLER_TYPE: _InSet(False, _C.HT_KVM_VALID_SCSI_CONTROLLER_TYPES),
    _C.HV_KVM_PCI_RESERVATIONS: _Opt(
        _IntInRange(0, _C.QEMU_PCI_SLOTS),
        f"must be an integer from 0 to {_C.QEMU_PCI_SLOTS} (PCI slots left to QEMU)"),
    _C.HV_USB_MOUSE: _InSet(False, _C.HT_KVM_VALID_MOUSE_TYPES, " (or empty)"),
    _C.HV_KEYMAP: _Opt(_Matches(r"[A-Za-z0-9_-]+"),
                       "must be a keyboard layout name such as fr or en-gb"),
    _C.HV_MIGRATION_PORT: base.NET_PORT_CHECK,
    _C.HV_MIGRATION_BANDWIDTH: _Req(_IntInRange(0), "must be a non-negative integer (MiB/s)"),
    _C.HV_MIGRATION_DOWNTIME: _Req(_IntInRange(0), "must be a non-negative integer (ms)"),
    _C.HV_MIGRATION_MODE: base.MIGRATION_MODE_CHECK,
    _C.HV_KVM_MIGRATION_CAPS: _Opt(
        _Matches(r"[a-z0-9-]+(:[a-z0-9-]+)*"),
        "must be migration capability names separated by ':' (e.g. xbzrle:auto-converge)"),
    _C.HV_USE_LOCALTIME: _BOOL,
    _C.HV_DISK_CACHE: _InSet(True, _C.HT_VALID_CACHE_TYPES),
    _C.HV_KVM_DISK_AIO: _InSet(False, _C.HT_KVM_VALID_AIO_TYPES),
    _C.HV_DISK_DISCARD: _InSet(False, _C.HT_VALID_DISCARD_TYPES),
    _C.HV_SECURITY_MODEL: _InSet(True, _C.HT_KVM_VALID_SM_TYPES),
    _C.HV_SECURITY_DOMAIN: _Opt(_Matches(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?"),
                                "must be a user name", _UserExists,
                                "no such user on this node"),
    _C.HV_KVM_FLAG: _InSet(False, _C.HT_KVM_FLAG_VALUES, " (or empty: QEMU's choice)"),
    _C.HV_VHOST_NET: (False, IsBool, "must be a boolean (true or false)",
                      _VhostDeviceExists,
                      f"{VHOST_NET_DEVICE} is missing (load the vhost_net module)"),
    _C.HV_VIRTIO_NET_QUEUES: _Opt(
        _IntInRange(1, _C.MAX_VIRTIO_NET_QUEUES),
        f"must be an integer from 1 to {_C.MAX_VIRTIO_NET_QUEUES}"),
    _C.HV_VNET_HDR: _BOOL,
    _C.HV_KVM_USE_CHROOT: _BOOL,
    _C.HV_KVM_USER_SHUTDOWN: _BOOL,
    _C.HV_KVM_USE_GUEST_AGENT: _BOOL,
    _C.HV_MEM_PATH: base.OPT_DIR_CHECK,
    _C.HV_REBOOT_BEHAVIOR: _InSet(True, _C.REBOOT_BEHAVIORS),
    _C.HV_CPU_MASK: _Opt(_IsCpuMask, "must be 'all', a CPU list such as 0-2,5, or one"
                         " such entry per vCPU separated by ':' (e.g. 1:3 or 1-2:all)"),
    # Commas allowed: "host,+vmx" gives a model and its features
    _C.HV_CPU_TYPE: _Opt(_IsToken, "must be a CPU model (with optional ,+feature"
                         " flags) without spaces, see qemu -cpu help"),
    _C.HV_CPU_CORES: _NONNEG_INT,
    _C.HV_CPU_THREADS: _NONNEG_INT,
    _C.HV_CPU_SOCKETS: _NONNEG_INT,
    _C.HV_SOUNDHW: _Opt(_Matches(r"[a-z0-9_-]+"),
                        "must be one sound card model such as hda or ac97"),
    _C.HV_USB_DEVICES: _Opt(
        _IsUsbDevices, "must be USB devices separated by spaces: mouse, tablet, keyboard,"
        " wacom-tablet, braille, host:BUS.ADDR, host:VENDOR:PRODUCT or a usb-* device"
        " spec"),
    _C.HV_VGA: _Opt(_Matches(r"[a-z0-9_-]+"),
                    "must be a VGA card type such as std, cirrus, qxl, virtio or none"),
    _C.HV_KVM_EXTRA: _Opt(_IsShellWords, "must be QEMU options quoted as in a shell"
                          " (unbalanced quotes?)"),
    _C.HV_MACHINE_VERSION: _Opt(_Matches(r"[A-Za-z0-9_.-]+"),
                                "must be a machine type such as pc-i440fx-7.2"),
}

#: The SPICE parameters that mean nothing without spice_bind (unset values:
#: "" or False, or 0 for the IP version)
SPICE_ADDITIONAL_PARAMS = (
    _C.HV_KVM_SPICE_IP_VERSION, _C.HV_KVM_SPICE_PASSWORD_FILE,
    _C.HV_KVM_SPICE_LOSSLESS_IMG_COMPR, _C.HV_KVM_SPICE_JPEG_IMG_COMPR,
    _C.HV_KVM_SPICE_ZLIB_GLZ_IMG_COMPR, _C.HV_KVM_SPICE_STREAMING_VIDEO_DETECTION,
    _C.HV_KVM_SPICE_USE_TLS,
)
#: The VNC parameters that mean nothing without vnc_bind_address
VNC_ADDITIONAL_PARAMS = (
    _C.HV_VNC_TLS, _C.HV_VNC_X509, _C.HV_VNC_X509_VERIFY, _C.HV_VNC_PASSWORD_FILE,
)
#: Files a VNC TLS directory must hold (QEMU's tls-creds-x509, server side)
VNC_X509_FILES = ("ca-cert.pem", "server-cert.pem", "server-key.pem")


def _NodeVncPasswordFile(path: str) -> str:
    """This node's copy of the cluster's VNC password file when ``path``
    names it (below the node root in a virtual cluster), else ``path``."""
    if path == _C.DEFAULT_CONF_DIR + "/vnc-cluster-password":
        return pathutils.VNC_PASSWORD_FILE
    return path


def _Fail(msg: str) -> errors.HypervisorError:
    return errors.HypervisorError(msg)


# --- Cross-parameter checks (master) -------------------------------------------------


def CheckCrossParameters(hvparams: Mapping[str, Any]) -> None:
    """Check the parameters that depend on one another.

    Run after the per-parameter checks, on the whole (filled) set.

    @raise errors.HypervisorError: naming the parameters
    """
    def hvp(name: str) -> Any:
        return hvparams.get(name)

    model = hvp(_C.HV_SECURITY_MODEL)
    if model == _C.HT_SM_USER:
        if not hvp(_C.HV_SECURITY_DOMAIN):
            raise _Fail(f"Security model '{_C.HT_SM_USER}' needs a security_domain"
                        " (the user to run QEMU as)")
    elif hvp(_C.HV_SECURITY_DOMAIN):
        raise _Fail(f"security_domain must be empty under security model '{model}'"
                    f" (it is only used with '{_C.HT_SM_USER}')")

    boot_order = hvp(_C.HV_BOOT_ORDER)
    if boot_order == _C.HT_BO_CDROM and not hvp(_C.HV_CDROM_IMAGE_PATH):
        raise _Fail("Cannot boot from CD-ROM (boot_order=cdrom) without a"
                    " cdrom_image_path")
    if boot_order == _C.HT_BO_FLOPPY and not hvp(_C.HV_KVM_FLOPPY_IMAGE_PATH):
        raise _Fail("Cannot boot from floppy (boot_order=floppy) without a"
                    " floppy_image_path")
    if boot_order == _C.HT_BO_NETWORK and hvp(_C.HV_KERNEL_PATH):
        raise _Fail("Network boot (boot_order=network) is impossible with a"
                    " kernel_path: QEMU boots the given kernel; clear kernel_path")

    if hvp(_C.HV_SERIAL_CONSOLE):
        speed = hvp(_C.HV_SERIAL_SPEED)
        if speed not in _C.VALID_SERIAL_SPEEDS:
            raise _Fail(f"Invalid serial_speed {speed!r}: with serial_console it must be"
                        f" one of {', '.join(map(str, _C.VALID_SERIAL_SPEEDS))}")

    if hvp(_C.HV_VNC_X509_VERIFY) and not hvp(_C.HV_VNC_X509):
        raise _Fail("vnc_x509_verify needs vnc_x509_path (the directory with the"
                    " CA certificate to verify clients against)")
    if not hvp(_C.HV_VNC_BIND_ADDRESS):
        for name in VNC_ADDITIONAL_PARAMS:
            if hvp(name):
                raise _Fail(f"VNC: {name} needs vnc_bind_address to be set")

    spice_bind = hvp(_C.HV_KVM_SPICE_BIND)
    if spice_bind:
        version = hvp(_C.HV_KVM_SPICE_IP_VERSION) or _C.IFACE_NO_IP_VERSION_SPECIFIED
        if version != _C.IFACE_NO_IP_VERSION_SPECIFIED and utils.IsValidIP(spice_bind):
            family = 4 if utils.IsValidIP4(spice_bind) else 6
            if family != version:
                raise _Fail(f"SPICE: spice_bind {spice_bind} is an IPv{family} address"
                            f" but spice_ip_version is {version}")
        vnc_bind = hvp(_C.HV_VNC_BIND_ADDRESS)
        if vnc_bind and not utils.IsNormAbsPath(vnc_bind):
            # Both would listen on the instance's one network port
            raise _Fail("SPICE and VNC cannot both listen on the network: clear"
                        " vnc_bind_address or spice_bind (VNC on a Unix socket path"
                        " may stay)")
    else:
        for name in SPICE_ADDITIONAL_PARAMS:
            if hvp(name):
                raise _Fail(f"SPICE: {name} needs spice_bind to be set")

    if (hvp(_C.HV_KVM_DISK_AIO) == _C.HT_KVM_AIO_NATIVE
            and hvp(_C.HV_DISK_CACHE) != _C.HT_CACHE_NONE):
        # QEMU refuses to start otherwise: native AIO needs O_DIRECT
        raise _Fail(f"disk_aio={_C.HT_KVM_AIO_NATIVE} needs disk_cache={_C.HT_CACHE_NONE}"
                    f" (got disk_cache={hvp(_C.HV_DISK_CACHE)!r})")

    queues = hvp(_C.HV_VIRTIO_NET_QUEUES)
    if _IsInt(queues) and queues > 1 and hvp(_C.HV_VNET_HDR) is False:
        raise _Fail("virtio_net_queues above 1 needs vnet_hdr (multiqueue taps"
                    " carry virtio headers)")


def CheckVcpus(hvparams: Mapping[str, Any], vcpus: int) -> None:
    """Check the parameters that depend on the instance's vCPU count.

    ``cpu_mask`` given per vCPU (colon-separated) needs one entry per vCPU;
    ``cpu_cores``, ``cpu_threads`` and ``cpu_sockets`` (0: let QEMU compute)
    must multiply to the vCPU count as QEMU 7.2 requires: all three given,
    exactly; some given, a divisor of it.

    @raise errors.HypervisorError: naming the parameters and the count
    """
    mask = hvparams.get(_C.HV_CPU_MASK)
    if mask:
        try:
            entries = ParseMultiCpuMask(mask)
        except errors.ParseError as err:
            raise _Fail(f"Invalid cpu_mask '{mask}': {err}") from None
        if len(entries) > 1 and len(entries) != vcpus:
            raise _Fail(f"cpu_mask '{mask}' has {len(entries)} entries but the instance"
                        f" has {vcpus} vCPUs (give one entry per vCPU, or one for all)")
    topology = {name: hvparams.get(name) or 0
                for name in (_C.HV_CPU_SOCKETS, _C.HV_CPU_CORES, _C.HV_CPU_THREADS)}
    given = {name: value for name, value in topology.items() if value}
    if given:
        product = 1
        for value in given.values():
            product *= value
        shown = " * ".join(f"{name}={value}" for name, value in given.items())
        if len(given) == len(topology) and product != vcpus:
            raise _Fail(f"CPU topology {shown} gives {product} vCPUs, but the instance"
                        f" has {vcpus}")
        if vcpus % product:
            raise _Fail(f"CPU topology {shown} does not divide the instance's"
                        f" {vcpus} vCPUs")


# --- Node checks -------------------------------------------------------------------------


def _QemuOutput(kvm_path: str, *args: str) -> str:
    result = utils.RunCmd([kvm_path, *args], timeout=30)
    if result.failed:
        raise _Fail(f"Cannot run '{kvm_path} {' '.join(args)}': {result.fail_reason}:"
                    f" {result.output.strip()[:200]}")
    return result.stdout


def ParseMachineTypes(text: str) -> set[str]:
    """The machine type names in the output of ``qemu -machine help``."""
    names = set()
    for line in text.splitlines()[1:]:
        words = line.split()
        if words:
            names.add(words[0])
    return names


def ValidateNodeParameters(hvparams: Mapping[str, Any]) -> None:
    """Check what the per-parameter validations cannot (on the node).

    @raise errors.HypervisorError: naming the parameter and the problem
    """
    def hvp(name: str) -> Any:
        return hvparams.get(name)

    x509_dir = hvp(_C.HV_VNC_X509)
    if hvp(_C.HV_VNC_BIND_ADDRESS) and hvp(_C.HV_VNC_TLS) and x509_dir:
        missing = [name for name in VNC_X509_FILES
                   if not os.path.isfile(os.path.join(x509_dir, name))]
        if missing:
            raise _Fail(f"vnc_x509_path {x509_dir} lacks {', '.join(missing)}")
    if hvp(_C.HV_KVM_SPICE_BIND) and hvp(_C.HV_KVM_SPICE_USE_TLS):
        missing = [path for path in (pathutils.SPICE_CERT_FILE, pathutils.SPICE_CACERT_FILE)
                   if not os.path.isfile(path)]
        if missing:
            raise _Fail(f"SPICE TLS needs the cluster's SPICE certificates: missing"
                        f" {', '.join(missing)} (gnt-cluster renew-crypto --new-spice-certificate)")
    kvm_path = hvp(_C.HV_KVM_PATH)
    machine = hvp(_C.HV_MACHINE_VERSION)
    if machine:
        known = ParseMachineTypes(_QemuOutput(kvm_path, "-machine", "help"))
        if machine not in known:
            raise _Fail(f"machine_version '{machine}' is not supported by {kvm_path}"
                        f" (see '{kvm_path} -machine help')")
    if hvp(_C.HV_KVM_SPICE_BIND):
        if not re.search(r"^-spice ", _QemuOutput(kvm_path, "-help"), re.MULTILINE):
            raise _Fail(f"spice_bind is set but {kvm_path} has no SPICE support")
