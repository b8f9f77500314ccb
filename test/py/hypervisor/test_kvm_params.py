"""hypervisor.hv_kvm.params: every KVM parameter's check, the cross checks,
the vCPU checks and the node-side validation."""

from __future__ import annotations

import os
import stat
import sys
from typing import Any

import pytest

from ganeti import constants as C
from ganeti import errors, pathutils
from ganeti.hypervisor.hv_kvm import KVMHypervisor, params

DEFAULTS = C.HVC_DEFAULTS[C.HT_KVM]


def _Params(**overrides: Any) -> dict[str, Any]:
    return {**DEFAULTS, **overrides}


def _Syntax(**overrides: Any) -> None:
    KVMHypervisor.CheckParameterSyntax(_Params(**overrides))


# --- Declarations --------------------------------------------------------------------


def test_every_default_is_declared_and_passes():
    assert set(DEFAULTS) == set(KVMHypervisor.PARAMETERS)
    KVMHypervisor.CheckParameterSyntax(dict(DEFAULTS))


def test_ganeti_defaults():
    """A few of Ganeti 3.0's defaults that other code relies on."""
    assert DEFAULTS[C.HV_KVM_PATH] == "/usr/bin/kvm"
    assert DEFAULTS[C.HV_SERIAL_SPEED] == 38400
    assert DEFAULTS[C.HV_MIGRATION_PORT] == 8102
    assert DEFAULTS[C.HV_BOOT_ORDER] == C.HT_BO_DISK
    assert DEFAULTS[C.HV_DISK_CACHE] == C.HT_CACHE_DEFAULT
    assert DEFAULTS[C.HV_KVM_DISK_AIO] == C.HT_KVM_AIO_THREADS
    assert DEFAULTS[C.HV_KVM_PCI_RESERVATIONS] == 12
    assert DEFAULTS[C.HV_VNET_HDR] is True and DEFAULTS[C.HV_VHOST_NET] is False
    assert DEFAULTS[C.HV_KVM_SPICE_TLS_CIPHERS] == C.OPENSSL_CIPHERS
    # The parameter types come from the defaults' types (CheckHvParams)
    assert isinstance(DEFAULTS[C.HV_KVM_SPICE_IP_VERSION], int)
    assert isinstance(DEFAULTS[C.HV_CPU_CORES], int)


def test_unknown_parameter():
    with pytest.raises(errors.HypervisorError, match="no_such_param not supported"):
        _Syntax(no_such_param=1)


# Every parameter: values its check accepts, values it rejects. Companion
# settings keep the cross checks quiet where a good value needs them.
_VNC = {C.HV_VNC_BIND_ADDRESS: "127.0.0.1"}
_SPICE = {C.HV_KVM_SPICE_BIND: "127.0.0.1"}
_BOOL_BAD = ["yes", 1, "true"]

CASES: dict[str, tuple[list[Any], list[Any], dict[str, Any]]] = {
    C.HV_KVM_PATH: (["/usr/bin/qemu-system-x86_64"], ["", "qemu", "/usr//bin/kvm", 3], {}),
    C.HV_KERNEL_PATH: (["", "/boot/vmlinuz"], ["vmlinuz", "/boot/../vmlinuz"], {}),
    C.HV_INITRD_PATH: (["", "/boot/initrd.img"], ["initrd.img", 7], {}),
    C.HV_ROOT_PATH: (["", "/dev/vda1", "LABEL=root"], ["/dev/vda1 rw", 1], {}),
    C.HV_KERNEL_ARGS: (["", "ro single", "quiet"], ["ro\ninit=/bin/sh", 5], {}),
    C.HV_ACPI: ([True, False], _BOOL_BAD, {}),
    C.HV_PAE: ([True, False], _BOOL_BAD, {}),
    C.HV_SERIAL_CONSOLE: ([True, False], _BOOL_BAD, {}),
    C.HV_SERIAL_SPEED: ([9600, 115200], [0, -1, "fast", True], {}),
    C.HV_VNC_BIND_ADDRESS: (["", "0.0.0.0", "::1", "eth0", "/run/vnc.sock"],
                            ["a/b", "relative/sock", "x" * 16, 5], {}),
    C.HV_VNC_TLS: ([True, False], _BOOL_BAD, _VNC),
    C.HV_VNC_X509: (["", "/etc/ganeti/x509"], ["x509", "/etc/../x509"],
                    {**_VNC, C.HV_VNC_TLS: True}),
    C.HV_VNC_X509_VERIFY: ([True, False], _BOOL_BAD,
                           {**_VNC, C.HV_VNC_X509: "/etc/x509"}),
    C.HV_VNC_PASSWORD_FILE: (["", "/etc/ganeti/vnc-pw"], ["vnc-pw"], _VNC),
    C.HV_KVM_SPICE_BIND: (["", "127.0.0.1", "::", "br0"], ["a b", "x/y", 4], {}),
    C.HV_KVM_SPICE_IP_VERSION: ([0, 4, 6], [5, "4", -1, False, 4.0],
                                {C.HV_KVM_SPICE_BIND: "eth0"}),
    C.HV_KVM_SPICE_PASSWORD_FILE: (["", "/etc/spice-pw"], ["spice-pw"], _SPICE),
    C.HV_KVM_SPICE_LOSSLESS_IMG_COMPR: (["", "auto_glz", "quic", "off"], ["zip", "GLZ"],
                                        _SPICE),
    C.HV_KVM_SPICE_JPEG_IMG_COMPR: (["", "auto", "never", "always"], ["sometimes"], _SPICE),
    C.HV_KVM_SPICE_ZLIB_GLZ_IMG_COMPR: (["", "auto", "never", "always"], ["maybe"], _SPICE),
    C.HV_KVM_SPICE_STREAMING_VIDEO_DETECTION: (["", "off", "all", "filter"], ["some"],
                                               _SPICE),
    C.HV_KVM_SPICE_AUDIO_COMPR: ([True, False], _BOOL_BAD, {}),
    C.HV_KVM_SPICE_USE_TLS: ([True, False], _BOOL_BAD, _SPICE),
    C.HV_KVM_SPICE_TLS_CIPHERS: (["", "HIGH:-DES", "AES256-SHA,AES128-SHA"],
                                 ["HIGH -DES", 3], {}),
    C.HV_KVM_SPICE_USE_VDAGENT: ([True, False], _BOOL_BAD, {}),
    C.HV_KVM_FLOPPY_IMAGE_PATH: (["", "/srv/drivers.img"], ["drivers.img"], {}),
    C.HV_CDROM_IMAGE_PATH: (["", "/srv/install.iso", "https://example.com/x.iso"],
                            ["install.iso", "file:///x.iso"], {}),
    C.HV_KVM_CDROM2_IMAGE_PATH: (["", "/srv/virtio.iso", "ftp://example.com/v.iso"],
                                 ["virtio.iso"], {}),
    C.HV_BOOT_ORDER: (["floppy", "cdrom", "disk", "network"], ["", "hd", "c"],
                      {C.HV_CDROM_IMAGE_PATH: "/x.iso", C.HV_KVM_FLOPPY_IMAGE_PATH: "/f.img"}),
    C.HV_NIC_TYPE: (sorted(C.HT_KVM_VALID_NIC_TYPES), ["", "virtio", "rtl", ["e1000"], 1],
                    {}),
    C.HV_DISK_TYPE: (sorted(C.HT_KVM_VALID_DISK_TYPES), ["", "ioemu", "virtio"], {}),
    C.HV_KVM_CDROM_DISK_TYPE: (["", "ide", "paravirtual", "scsi"], ["ioemu", "cd"], {}),
    C.HV_KVM_SCSI_CONTROLLER_TYPE: (["", "lsi", "megasas", "virtio-scsi-pci", "dc390"],
                                    ["lsi53c895a", "ahci"], {}),
    C.HV_KVM_PCI_RESERVATIONS: ([0, 12, 32], [-1, 33, "12"], {}),
    C.HV_USB_MOUSE: (["", "mouse", "tablet"], ["touchpad"], {}),
    C.HV_KEYMAP: (["", "fr", "en-gb", "de-ch"], ["fr gb", "../etc/x"], {}),
    C.HV_MIGRATION_PORT: ([1, 8102, 65535], [0, 65536, "8102"], {}),
    C.HV_MIGRATION_BANDWIDTH: ([0, 32, 1000], [-1, "fast", 1.5], {}),
    C.HV_MIGRATION_DOWNTIME: ([0, 30], [-30, "30ms"], {}),
    C.HV_MIGRATION_MODE: (["live", "non-live"], ["", "offline"], {}),
    C.HV_KVM_MIGRATION_CAPS: (["", "xbzrle", "xbzrle:auto-converge:postcopy-ram"],
                              ["xbzrle,auto-converge", "a::b", ":x"], {}),
    C.HV_USE_LOCALTIME: ([True, False], _BOOL_BAD, {}),
    C.HV_DISK_CACHE: (["default", "none", "writethrough", "writeback"],
                      ["", "unsafe", "directsync"], {}),
    C.HV_KVM_DISK_AIO: (["", "threads", "native", "io_uring"], ["posix"],
                        {C.HV_DISK_CACHE: "none"}),
    C.HV_DISK_DISCARD: (["", "ignore", "unmap"], ["on", "default"], {}),
    C.HV_SECURITY_MODEL: (["none", "pool"], ["", "root", "users"], {}),
    C.HV_SECURITY_DOMAIN: (["nobody", "ganeti-kvm1", "_qemu"], ["bad user", "1abc"],
                           {C.HV_SECURITY_MODEL: "user"}),
    C.HV_KVM_FLAG: (["", "enabled", "disabled"], ["on", "kvm", True], {}),
    C.HV_VHOST_NET: ([True, False], _BOOL_BAD, {}),
    C.HV_VIRTIO_NET_QUEUES: ([1, 4, 32], [0, 33, "2"], {}),
    C.HV_VNET_HDR: ([True, False], _BOOL_BAD, {}),
    C.HV_KVM_USE_CHROOT: ([True, False], _BOOL_BAD, {}),
    C.HV_KVM_USER_SHUTDOWN: ([True, False], _BOOL_BAD, {}),
    C.HV_KVM_USE_GUEST_AGENT: ([True, False], _BOOL_BAD, {}),
    C.HV_MEM_PATH: (["", "/dev/hugepages"], ["hugepages"], {}),
    C.HV_REBOOT_BEHAVIOR: (["reboot", "exit"], ["", "halt"], {}),
    C.HV_CPU_MASK: (["", "all", "0-2,5", "1:3", "1-2:all", "all:1,3-5:0"],
                    ["x", "2-1", "1::2", "-1", "0-", 5], {}),
    C.HV_CPU_TYPE: (["", "host", "qemu64", "host,+vmx,-svm"], ["host +vmx", 64], {}),
    C.HV_CPU_CORES: ([0, 2], [-1, "2", True], {}),
    C.HV_CPU_THREADS: ([0, 2], [-2, 1.0], {}),
    C.HV_CPU_SOCKETS: ([0, 1], [-1, "one"], {}),
    C.HV_SOUNDHW: (["", "hda", "ac97"], ["hda,ac97", "Hda!"], {}),
    C.HV_USB_DEVICES: (["", "tablet", "mouse keyboard", "host:1.2", "host:046d:c52b",
                        "usb-host,hostbus=1,hostaddr=3"],
                       ["printer", "host:x", "disk:/tmp/x", "usb-host,a b"], {}),
    C.HV_VGA: (["", "std", "cirrus", "qxl", "none"], ["std,vgamem_mb=64", "Std"], {}),
    C.HV_KVM_EXTRA: (["", "-device virtio-rng-pci", '-fw_cfg name=opt/x,string="a b"'],
                     ['-append "unterminated', 3], {}),
    C.HV_MACHINE_VERSION: (["", "pc", "pc-i440fx-7.2", "q35"],
                           ["pc,accel=kvm", "pc i440fx"], {}),
}


def test_every_parameter_has_cases():
    assert set(CASES) == set(KVMHypervisor.PARAMETERS)


@pytest.mark.parametrize("name,value,extra", [
    (name, value, extra) for name, (good, _, extra) in CASES.items() for value in good])
def test_good_value(name, value, extra):
    _Syntax(**{**extra, name: value})


@pytest.mark.parametrize("name,value,extra", [
    (name, value, extra) for name, (_, bad, extra) in CASES.items() for value in bad])
def test_bad_value(name, value, extra):
    with pytest.raises(errors.HypervisorError) as err:
        _Syntax(**{**extra, name: value})
    # The message names the parameter and says what was expected
    assert f"'{name}'" in str(err.value)
    assert "must be" in str(err.value) or "required" in str(err.value)


def test_required_parameters():
    for name in (C.HV_KVM_PATH, C.HV_BOOT_ORDER, C.HV_NIC_TYPE, C.HV_DISK_TYPE,
                 C.HV_DISK_CACHE, C.HV_SECURITY_MODEL, C.HV_REBOOT_BEHAVIOR,
                 C.HV_MIGRATION_PORT, C.HV_MIGRATION_MODE):
        hvparams = _Params()
        del hvparams[name]
        with pytest.raises(errors.HypervisorError, match=f"'{name}' is required"):
            KVMHypervisor.CheckParameterSyntax(hvparams)


def test_check_messages_say_what_was_expected():
    with pytest.raises(errors.HypervisorError,
                       match="'nic_type' fails syntax check: must be one of e1000,"):
        _Syntax(nic_type="virtio")
    with pytest.raises(errors.HypervisorError,
                       match=r"'kvm_flag' .*must be one of disabled, enabled \(or empty"):
        _Syntax(kvm_flag="on")


# --- Cross checks -----------------------------------------------------------------------


@pytest.mark.parametrize("overrides,match", [
    ({C.HV_SECURITY_MODEL: "user"}, "'user' needs a security_domain"),
    ({C.HV_SECURITY_DOMAIN: "nobody"}, "security_domain must be empty under .*'none'"),
    ({C.HV_SECURITY_MODEL: "pool", C.HV_SECURITY_DOMAIN: "nobody"},
     "must be empty under security model 'pool'"),
    ({C.HV_BOOT_ORDER: "cdrom"}, "boot_order=cdrom.*without a cdrom_image_path"),
    ({C.HV_BOOT_ORDER: "cdrom", C.HV_KVM_CDROM2_IMAGE_PATH: "/x.iso"},
     "without a cdrom_image_path"),
    ({C.HV_BOOT_ORDER: "floppy"}, "without a floppy_image_path"),
    ({C.HV_BOOT_ORDER: "network", C.HV_KERNEL_PATH: "/boot/vmlinuz"},
     "boot_order=network.*kernel_path"),
    ({C.HV_SERIAL_SPEED: 12345}, "serial_speed 12345: with serial_console it must be one of"),
    ({C.HV_VNC_TLS: True}, "VNC: vnc_tls needs vnc_bind_address"),
    ({C.HV_VNC_X509: "/etc/x509"}, "VNC: vnc_x509_path needs vnc_bind_address"),
    ({C.HV_VNC_PASSWORD_FILE: "/etc/pw"}, "VNC: vnc_password_file needs vnc_bind_address"),
    ({**_VNC, C.HV_VNC_X509_VERIFY: True}, "vnc_x509_verify needs vnc_x509_path"),
    ({C.HV_KVM_SPICE_IP_VERSION: 4}, "SPICE: spice_ip_version needs spice_bind"),
    ({C.HV_KVM_SPICE_PASSWORD_FILE: "/etc/pw"}, "spice_password_file needs spice_bind"),
    ({C.HV_KVM_SPICE_LOSSLESS_IMG_COMPR: "glz"}, "spice_image_compression needs spice_bind"),
    ({C.HV_KVM_SPICE_JPEG_IMG_COMPR: "auto"}, "spice_jpeg_wan_compression needs spice_bind"),
    ({C.HV_KVM_SPICE_ZLIB_GLZ_IMG_COMPR: "auto"},
     "spice_zlib_glz_wan_compression needs spice_bind"),
    ({C.HV_KVM_SPICE_STREAMING_VIDEO_DETECTION: "all"},
     "spice_streaming_video needs spice_bind"),
    ({C.HV_KVM_SPICE_USE_TLS: True}, "spice_use_tls needs spice_bind"),
    ({C.HV_KVM_SPICE_BIND: "127.0.0.1", C.HV_KVM_SPICE_IP_VERSION: 6},
     "is an IPv4 address but spice_ip_version is 6"),
    ({C.HV_KVM_SPICE_BIND: "::1", C.HV_KVM_SPICE_IP_VERSION: 4},
     "is an IPv6 address but spice_ip_version is 4"),
    ({**_VNC, **_SPICE}, "SPICE and VNC cannot both listen on the network"),
    ({C.HV_VNC_BIND_ADDRESS: "eth0", C.HV_KVM_SPICE_BIND: "eth1"}, "cannot both listen"),
    ({C.HV_KVM_DISK_AIO: "native"}, "disk_aio=native needs disk_cache=none"),
    ({C.HV_KVM_DISK_AIO: "native", C.HV_DISK_CACHE: "writeback"}, "needs disk_cache=none"),
    ({C.HV_VIRTIO_NET_QUEUES: 4, C.HV_VNET_HDR: False}, "virtio_net_queues.*needs vnet_hdr"),
])
def test_cross_check_fails(overrides, match):
    with pytest.raises(errors.HypervisorError, match=match):
        _Syntax(**overrides)


@pytest.mark.parametrize("overrides", [
    {C.HV_SECURITY_MODEL: "user", C.HV_SECURITY_DOMAIN: "nobody"},
    {C.HV_BOOT_ORDER: "cdrom", C.HV_CDROM_IMAGE_PATH: "/x.iso"},
    {C.HV_BOOT_ORDER: "network"},
    {C.HV_SERIAL_CONSOLE: False, C.HV_SERIAL_SPEED: 12345},
    {**_VNC, C.HV_VNC_TLS: True, C.HV_VNC_X509: "/etc/x509", C.HV_VNC_X509_VERIFY: True,
     C.HV_VNC_PASSWORD_FILE: "/etc/pw"},
    {C.HV_VNC_BIND_ADDRESS: "/run/vnc.sock", C.HV_VNC_TLS: True},
    {**_SPICE, C.HV_KVM_SPICE_IP_VERSION: 4, C.HV_KVM_SPICE_USE_TLS: True,
     C.HV_KVM_SPICE_LOSSLESS_IMG_COMPR: "glz"},
    {C.HV_KVM_SPICE_BIND: "eth0", C.HV_KVM_SPICE_IP_VERSION: 6},
    # The SPICE options on by default do not need spice_bind
    {C.HV_KVM_SPICE_AUDIO_COMPR: True, C.HV_KVM_SPICE_USE_VDAGENT: True},
    {C.HV_KVM_DISK_AIO: "native", C.HV_DISK_CACHE: "none"},
    {C.HV_VIRTIO_NET_QUEUES: 4},
    {**_SPICE, C.HV_VNC_BIND_ADDRESS: "/run/vnc.sock"},
])
def test_cross_check_passes(overrides):
    _Syntax(**overrides)


# --- vCPU-dependent checks ---------------------------------------------------------------


@pytest.mark.parametrize("overrides,vcpus", [
    ({}, 4),
    ({C.HV_CPU_MASK: "0-3"}, 2),
    ({C.HV_CPU_MASK: "1:3"}, 2),
    ({C.HV_CPU_MASK: "1-2:all:0"}, 3),
    ({C.HV_CPU_CORES: 2}, 4),
    ({C.HV_CPU_SOCKETS: 2, C.HV_CPU_CORES: 2}, 8),
    ({C.HV_CPU_SOCKETS: 1, C.HV_CPU_CORES: 2, C.HV_CPU_THREADS: 2}, 4),
])
def test_vcpus_ok(overrides, vcpus):
    params.CheckVcpus(_Params(**overrides), vcpus)


@pytest.mark.parametrize("overrides,vcpus,match", [
    ({C.HV_CPU_MASK: "1:3"}, 3, "has 2 entries but the instance has 3 vCPUs"),
    ({C.HV_CPU_MASK: "0:1:2"}, 1, "has 3 entries but the instance has 1"),
    ({C.HV_CPU_CORES: 4}, 2, "cpu_cores=4 does not divide the instance's 2 vCPUs"),
    ({C.HV_CPU_SOCKETS: 2, C.HV_CPU_THREADS: 2}, 6, "does not divide"),
    ({C.HV_CPU_SOCKETS: 1, C.HV_CPU_CORES: 1, C.HV_CPU_THREADS: 1}, 4,
     "gives 1 vCPUs, but the instance has 4"),
    ({C.HV_CPU_SOCKETS: 2, C.HV_CPU_CORES: 2, C.HV_CPU_THREADS: 2}, 4, "gives 8 vCPUs"),
])
def test_vcpus_bad(overrides, vcpus, match):
    with pytest.raises(errors.HypervisorError, match=match):
        params.CheckVcpus(_Params(**overrides), vcpus)


def test_parse_cpu_mask():
    assert params.ParseMultiCpuMask("all") == [None]
    assert params.ParseMultiCpuMask("0-2,5") == [[0, 1, 2, 5]]
    assert params.ParseMultiCpuMask("1-2:all:0") == [[1, 2], None, [0]]
    for bad in ("", "2-1", "a", "1,,2"):
        with pytest.raises(errors.ParseError):
            params.ParseMultiCpuMask(bad)


def test_usb_device_specs():
    assert params.UsbDeviceSpec("tablet") == "usb-tablet"
    assert params.UsbDeviceSpec("keyboard") == "usb-kbd"
    assert params.UsbDeviceSpec("host:3.12") == "usb-host,hostbus=3,hostaddr=12"
    assert params.UsbDeviceSpec("host:046D:C52B") == \
        "usb-host,vendorid=0x046d,productid=0xc52b"
    assert params.UsbDeviceSpec("usb-serial,chardev=s0") == "usb-serial,chardev=s0"
    with pytest.raises(errors.ParseError, match="Unknown USB device 'disk:/x'"):
        params.UsbDeviceSpec("disk:/x")


# --- Node-side validation ------------------------------------------------------------------


@pytest.fixture
def node(tmp_path):
    """A kvm_path that is executable, and helpers to make files."""
    kvm = tmp_path / "kvm"
    kvm.write_text("#!/bin/sh\nexit 0\n")
    kvm.chmod(0o755)
    return tmp_path


def _Validate(**overrides: Any) -> None:
    KVMHypervisor().ValidateParameters(_Params(**overrides))


def test_validate_defaults(node):
    _Validate(kvm_path=str(node / "kvm"))


def test_validate_kvm_path(node):
    plain = node / "not-executable"
    plain.write_text("x")
    for path, match in ((node / "missing", "'kvm_path' fails validation: not found"),
                        (plain, "not an executable file"),
                        (node, "not found or not an executable")):
        with pytest.raises(errors.HypervisorError, match=match):
            _Validate(kvm_path=str(path))


def test_validate_cluster_vnc_password_file_is_the_nodes_copy(node, monkeypatch):
    # The configuration names /etc/ganeti/vnc-cluster-password; each node
    # checks its own copy (below its root in a virtual cluster)
    from ganeti import pathutils
    copy = node / "vnc-cluster-password"
    monkeypatch.setattr(pathutils, "VNC_PASSWORD_FILE", str(copy))
    cluster_path = C.DEFAULT_CONF_DIR + "/vnc-cluster-password"
    kvm = str(node / "kvm")
    with pytest.raises(errors.HypervisorError, match="'vnc_password_file' fails"):
        _Validate(kvm_path=kvm, vnc_password_file=cluster_path)
    copy.write_text("secret\n")
    _Validate(kvm_path=kvm, vnc_password_file=cluster_path)


@pytest.mark.parametrize("name", [
    C.HV_KERNEL_PATH, C.HV_INITRD_PATH, C.HV_KVM_FLOPPY_IMAGE_PATH, C.HV_CDROM_IMAGE_PATH,
    C.HV_KVM_CDROM2_IMAGE_PATH, C.HV_VNC_PASSWORD_FILE, C.HV_KVM_SPICE_PASSWORD_FILE,
])
def test_validate_files(node, name):
    path = node / "file"
    kvm = str(node / "kvm")
    with pytest.raises(errors.HypervisorError, match=f"'{name}' fails validation: not found"):
        _Validate(kvm_path=kvm, **{name: str(path)})
    path.write_text("x")
    _Validate(kvm_path=kvm, **{name: str(path)})


def test_validate_cdrom_url_is_not_looked_up(node):
    _Validate(kvm_path=str(node / "kvm"), cdrom_image_path="https://example.com/x.iso")


@pytest.mark.parametrize("name", [C.HV_MEM_PATH, C.HV_VNC_X509])
def test_validate_directories(node, name):
    kvm = str(node / "kvm")
    with pytest.raises(errors.HypervisorError, match=f"'{name}' fails validation"):
        _Validate(kvm_path=kvm, **{name: str(node / "nodir")})
    (node / "file").write_text("x")
    with pytest.raises(errors.HypervisorError, match="not found or not a directory"):
        _Validate(kvm_path=kvm, **{name: str(node / "file")})
    _Validate(kvm_path=kvm, **{name: str(node)})


def test_validate_security_domain(node):
    kvm = str(node / "kvm")
    _Validate(kvm_path=kvm, security_model="user", security_domain="root")
    with pytest.raises(errors.HypervisorError,
                       match="'security_domain' fails validation: no such user"):
        _Validate(kvm_path=kvm, security_model="user", security_domain="no-such-user-gnt")


def test_validate_vhost_net(node, monkeypatch):
    kvm = str(node / "kvm")
    device = node / "vhost-net"
    monkeypatch.setattr(params, "VHOST_NET_DEVICE", str(device))
    _Validate(kvm_path=kvm, vhost_net=False)
    with pytest.raises(errors.HypervisorError, match="vhost-net is missing"):
        _Validate(kvm_path=kvm, vhost_net=True)
    device.write_text("")
    _Validate(kvm_path=kvm, vhost_net=True)


@pytest.mark.parametrize("name", [C.HV_VNC_BIND_ADDRESS, C.HV_KVM_SPICE_BIND])
def test_validate_bind_interface(node, name):
    kvm = _FakeQemu(node / "qemu", MACHINE_HELP, "-spice [port=port]\n")
    _Validate(kvm_path=kvm, **{name: "lo"})
    _Validate(kvm_path=kvm, **{name: "192.0.2.1"})
    with pytest.raises(errors.HypervisorError, match="no such network interface"):
        _Validate(kvm_path=kvm, **{name: "gntnosuch0"})


def test_validate_vnc_x509_files(node):
    kvm = str(node / "kvm")
    x509 = node / "x509"
    x509.mkdir()
    vnc = {C.HV_VNC_BIND_ADDRESS: "127.0.0.1", C.HV_VNC_TLS: True,
           C.HV_VNC_X509: str(x509)}
    with pytest.raises(errors.HypervisorError,
                       match="lacks ca-cert.pem, server-cert.pem, server-key.pem"):
        _Validate(kvm_path=kvm, **vnc)
    for name in params.VNC_X509_FILES:
        (x509 / name).write_text("x")
    _Validate(kvm_path=kvm, **vnc)


def test_validate_spice_tls_certificates(node, monkeypatch):
    kvm = node / "kvm"
    # A kvm_path that has SPICE
    kvm.write_text("#!/bin/sh\necho '-spice [port=port]'\n")
    cert, cacert = node / "spice.pem", node / "spice-ca.pem"
    monkeypatch.setattr(pathutils, "SPICE_CERT_FILE", str(cert))
    monkeypatch.setattr(pathutils, "SPICE_CACERT_FILE", str(cacert))
    spice = {C.HV_KVM_SPICE_BIND: "127.0.0.1", C.HV_KVM_SPICE_USE_TLS: True}
    with pytest.raises(errors.HypervisorError, match="SPICE TLS needs .*spice.pem"):
        _Validate(kvm_path=str(kvm), **spice)
    cert.write_text("x")
    cacert.write_text("x")
    _Validate(kvm_path=str(kvm), **spice)


#: The start of `qemu-system-x86_64 -machine help` (QEMU 7.2, Debian bookworm)
MACHINE_HELP = """\
Supported machines are:
microvm              microvm (i386)
pc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)
pc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996) (default)
pc-i440fx-7.1        Standard PC (i440FX + PIIX, 1996)
q35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)
pc-q35-7.2           Standard PC (Q35 + ICH9, 2009)
isapc                ISA-only PC
none                 empty machine
"""


def _FakeQemu(path, machine_help: str, help_text: str = "-name string1\n"):
    """A kvm_path answering -machine help and -help as QEMU does."""
    path.write_text(f"""#!{sys.executable}
import sys
if sys.argv[1:] == ["-machine", "help"]:
    sys.stdout.write({machine_help!r})
elif sys.argv[1:] == ["-help"]:
    sys.stdout.write({help_text!r})
else:
    sys.exit(1)
""")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_parse_machine_types():
    names = params.ParseMachineTypes(MACHINE_HELP)
    assert {"pc", "pc-i440fx-7.2", "q35", "isapc", "none"} <= names
    assert "Supported" not in names


def test_validate_machine_version(node):
    kvm = _FakeQemu(node / "qemu", MACHINE_HELP)
    _Validate(kvm_path=kvm, machine_version="pc-i440fx-7.1")
    with pytest.raises(errors.HypervisorError,
                       match="machine_version 'pc-i440fx-9.9' is not supported by"):
        _Validate(kvm_path=kvm, machine_version="pc-i440fx-9.9")


def test_validate_machine_version_qemu_fails(node):
    kvm = node / "broken"
    kvm.write_text("#!/bin/sh\necho boom >&2\nexit 3\n")
    kvm.chmod(0o755)
    with pytest.raises(errors.HypervisorError, match="Cannot run .*-machine help.*boom"):
        _Validate(kvm_path=str(kvm), machine_version="pc")


def test_validate_spice_support(node):
    without = _FakeQemu(node / "nospice", MACHINE_HELP, "-vnc <display>\n")
    with pytest.raises(errors.HypervisorError, match="has no SPICE support"):
        _Validate(kvm_path=without, spice_bind="127.0.0.1")
    with_spice = _FakeQemu(node / "spice", MACHINE_HELP, "-vnc x\n-spice [port=port]\n")
    _Validate(kvm_path=with_spice, spice_bind="127.0.0.1")


@pytest.mark.skipif(not os.path.exists("/usr/bin/qemu-system-x86_64"),
                    reason="qemu-system-x86_64 is not installed (debian-packages.txt)")
def test_validate_against_real_qemu():
    _Validate(kvm_path="/usr/bin/qemu-system-x86_64", machine_version="pc",
              spice_bind="127.0.0.1")
    with pytest.raises(errors.HypervisorError, match="not supported"):
        _Validate(kvm_path="/usr/bin/qemu-system-x86_64", machine_version="pc-nonesuch")

