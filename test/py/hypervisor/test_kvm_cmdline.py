"""hypervisor.hv_kvm.cmdline: QEMU's argv for every parameter, and real
QEMU accepting representative combinations of it."""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ganeti import constants as C
from ganeti import errors, pathutils
from ganeti.hypervisor.hv_kvm import KVMHypervisor, cmdline

DEFAULTS = C.HVC_DEFAULTS[C.HT_KVM]
UUID = "0b3d2a1c-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
FILES = cmdline.RuntimeFiles(pidfile="/run/kvm/pid/inst1", qmp="/run/kvm/ctrl/inst1.qmp",
                             serial="/run/kvm/ctrl/inst1.serial",
                             events_qmp="/run/kvm/ctrl/inst1.kvmd",
                             guest_agent="/run/kvm/ctrl/inst1.qga",
                             chroot="/run/kvm/chroot/inst1")
DISK = cmdline.DiskSpec("/dev/xenvg/disk0", "rw", "d1")
NIC = cmdline.NicSpec("aa:00:00:11:22:33", 17, "n1")


def _Build(overrides: dict[str, Any], disks: Sequence[Any] = (), nics: Sequence[Any] = (),
           vcpus: int = 2, **kwargs: Any) -> list[str]:
    kwargs.setdefault("network_port", 5901)
    hvparams = {**DEFAULTS, **overrides}
    # Whatever the table builds must pass the master's checks first
    KVMHypervisor.CheckParameterSyntax(hvparams)
    return cmdline.BuildCommandLine("inst1.example.com", UUID, 256, vcpus, hvparams,
                                    disks, nics, FILES, **kwargs)


def _HasFragment(argv: list[str], fragment: list[str]) -> bool:
    size = len(fragment)
    return any(argv[i:i + size] == fragment for i in range(len(argv) - size + 1))


def _Values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


def _Check(argv: list[str], expect: list[Any]) -> None:
    """Expectations: a list is a run of consecutive arguments; (flag, text)
    says that some value of flag contains text; ("!", arg) that arg is
    absent; ("!", flag, text) that no value of flag contains text."""
    for item in expect:
        if isinstance(item, list):
            assert _HasFragment(argv, item), f"{item} not in {argv}"
        elif item[0] == "!" and len(item) == 2:
            assert item[1] not in argv, f"{item[1]} in {argv}"
        elif item[0] == "!":
            assert not any(item[2] in v for v in _Values(argv, item[1])), argv
        else:
            flag, text = item
            assert any(text in v for v in _Values(argv, flag)), \
                f"no {flag} with {text!r} in {argv}"


def test_default_command_line():
    assert _Build({}, [DISK], [NIC]) == [
        "/usr/bin/kvm", "-name", "inst1.example.com", "-uuid", UUID,
        "-m", "256", "-smp", "2", "-pidfile", "/run/kvm/pid/inst1", "-daemonize",
        "-qmp", "unix:/run/kvm/ctrl/inst1.qmp,server=on,wait=off",
        "-serial", "unix:/run/kvm/ctrl/inst1.serial,server=on,wait=off",
        "-display", "none",
        "-boot", "order=c",
        "-drive", "file=/dev/xenvg/disk0,format=raw,aio=threads,discard=ignore,if=none,"
                  "id=disk-d1",
        "-device", "virtio-blk-pci,drive=disk-d1,id=disk-d1,addr=0xc",
        "-netdev", "tap,id=nic-n1,fd=17",
        "-device", "virtio-net-pci,netdev=nic-n1,id=nic-n1,mac=aa:00:00:11:22:33,addr=0xd",
        "-device", "virtio-balloon-pci,id=balloon",
    ]


_VNC = {C.HV_VNC_BIND_ADDRESS: "0.0.0.0"}
_SPICE = {C.HV_KVM_SPICE_BIND: "127.0.0.1"}
_KERNEL = {C.HV_KERNEL_PATH: "/boot/vmlinuz"}

# (parameter, overrides, BuildCommandLine keywords, expectations)
TABLE: list[tuple[str, dict[str, Any], dict[str, Any], list[Any]]] = [
    (C.HV_KVM_PATH, {C.HV_KVM_PATH: "/opt/qemu/bin/qemu-system-x86_64"}, {},
     [["/opt/qemu/bin/qemu-system-x86_64", "-name"]]),
    (C.HV_KERNEL_PATH, _KERNEL, {},
     [["-kernel", "/boot/vmlinuz"], ("!", "-boot"), ("!", "-initrd")]),
    (C.HV_INITRD_PATH, {**_KERNEL, C.HV_INITRD_PATH: "/boot/initrd.img"}, {},
     [["-kernel", "/boot/vmlinuz", "-initrd", "/boot/initrd.img"]]),
    (C.HV_INITRD_PATH, {C.HV_INITRD_PATH: "/boot/initrd.img"}, {},
     [("!", "-initrd"), ("!", "-kernel")]),
    (C.HV_ROOT_PATH, {**_KERNEL, C.HV_ROOT_PATH: "/dev/sda2"}, {},
     [["-append", "root=/dev/sda2 ro console=ttyS0,38400"]]),
    (C.HV_ROOT_PATH, {**_KERNEL, C.HV_ROOT_PATH: ""}, {},
     [["-append", "ro console=ttyS0,38400"]]),
    (C.HV_KERNEL_ARGS, {**_KERNEL, C.HV_KERNEL_ARGS: "rw init=/sbin/x"}, {},
     [["-append", "root=/dev/vda1 rw init=/sbin/x console=ttyS0,38400"]]),
    (C.HV_ACPI, {C.HV_ACPI: False}, {}, [["-machine", "acpi=off"], ("!", "-no-acpi")]),
    (C.HV_ACPI, {C.HV_ACPI: True}, {}, [("!", "-machine")]),
    (C.HV_PAE, {C.HV_PAE: True}, {}, [["-cpu", "qemu64,+pae"]]),
    (C.HV_PAE, {C.HV_PAE: True, C.HV_CPU_TYPE: "host"}, {}, [["-cpu", "host,+pae"]]),
    (C.HV_SERIAL_CONSOLE, {C.HV_SERIAL_CONSOLE: False, **_KERNEL}, {},
     [["-serial", "none"], ["-append", "root=/dev/vda1 ro"]]),
    (C.HV_SERIAL_SPEED, {C.HV_SERIAL_SPEED: 115200, **_KERNEL}, {},
     [("-append", "console=ttyS0,115200")]),
    (C.HV_VNC_BIND_ADDRESS, _VNC, {},
     [["-vnc", "0.0.0.0:1"], ["-usb", "-device", "usb-tablet"], ["-display", "none"]]),
    (C.HV_VNC_BIND_ADDRESS, {C.HV_VNC_BIND_ADDRESS: "::"}, {"network_port": 5910},
     [["-vnc", "[::]:10"]]),
    (C.HV_VNC_BIND_ADDRESS, {C.HV_VNC_BIND_ADDRESS: "/run/vnc/inst1"}, {},
     [["-vnc", "unix:/run/vnc/inst1"]]),
    (C.HV_VNC_BIND_ADDRESS, {C.HV_VNC_BIND_ADDRESS: "eth0"},
     {"bind_addresses": {"eth0": "192.0.2.5"}}, [["-vnc", "192.0.2.5:1"]]),
    (C.HV_VNC_TLS, {**_VNC, C.HV_VNC_TLS: True}, {},
     [["-object", "tls-creds-anon,id=vnc-tls0,endpoint=server",
       "-vnc", "0.0.0.0:1,tls-creds=vnc-tls0"]]),
    (C.HV_VNC_X509, {**_VNC, C.HV_VNC_TLS: True, C.HV_VNC_X509: "/etc/x509"}, {},
     [["-object", "tls-creds-x509,id=vnc-tls0,dir=/etc/x509,endpoint=server,"
       "verify-peer=off"]]),
    (C.HV_VNC_X509_VERIFY, {**_VNC, C.HV_VNC_TLS: True, C.HV_VNC_X509: "/etc/x509",
                            C.HV_VNC_X509_VERIFY: True}, {},
     [("-object", "verify-peer=on")]),
    (C.HV_VNC_PASSWORD_FILE, {**_VNC, C.HV_VNC_PASSWORD_FILE: "/etc/pw"}, {},
     [["-vnc", "0.0.0.0:1,password=on"]]),
    (C.HV_KVM_SPICE_BIND, _SPICE, {},
     [["-spice", "addr=127.0.0.1,port=5901,disable-ticketing=on,playback-compression=on"],
      ["-vga", "qxl"], ("!", "-vnc"),
      ["-device", "virtio-serial-pci,id=vserial0",
       "-chardev", "spicevmc,id=vdagent0,name=vdagent",
       "-device", "virtserialport,bus=vserial0.0,chardev=vdagent0,name=com.redhat.spice.0"]]),
    (C.HV_KVM_SPICE_BIND, {C.HV_KVM_SPICE_BIND: "br0"}, {"bind_addresses": {"br0": "::1"}},
     [("-spice", "addr=::1,port=5901")]),
    (C.HV_KVM_SPICE_IP_VERSION, {**_SPICE, C.HV_KVM_SPICE_IP_VERSION: 4}, {},
     [("-spice", ",ipv4=on")]),
    (C.HV_KVM_SPICE_IP_VERSION, {C.HV_KVM_SPICE_BIND: "::1", C.HV_KVM_SPICE_IP_VERSION: 6},
     {}, [("-spice", ",ipv6=on")]),
    (C.HV_KVM_SPICE_PASSWORD_FILE, {**_SPICE, C.HV_KVM_SPICE_PASSWORD_FILE: "/etc/pw"}, {},
     [("!", "-spice", "disable-ticketing"), ("-spice", "port=5901")]),
    (C.HV_KVM_SPICE_LOSSLESS_IMG_COMPR, {**_SPICE, C.HV_KVM_SPICE_LOSSLESS_IMG_COMPR: "glz"},
     {}, [("-spice", ",image-compression=glz")]),
    (C.HV_KVM_SPICE_JPEG_IMG_COMPR, {**_SPICE, C.HV_KVM_SPICE_JPEG_IMG_COMPR: "never"}, {},
     [("-spice", ",jpeg-wan-compression=never")]),
    (C.HV_KVM_SPICE_ZLIB_GLZ_IMG_COMPR, {**_SPICE, C.HV_KVM_SPICE_ZLIB_GLZ_IMG_COMPR: "always"},
     {}, [("-spice", ",zlib-glz-wan-compression=always")]),
    (C.HV_KVM_SPICE_STREAMING_VIDEO_DETECTION,
     {**_SPICE, C.HV_KVM_SPICE_STREAMING_VIDEO_DETECTION: "filter"}, {},
     [("-spice", ",streaming-video=filter")]),
    (C.HV_KVM_SPICE_AUDIO_COMPR, {**_SPICE, C.HV_KVM_SPICE_AUDIO_COMPR: False}, {},
     [("-spice", ",playback-compression=off")]),
    (C.HV_KVM_SPICE_USE_TLS, {**_SPICE, C.HV_KVM_SPICE_USE_TLS: True}, {},
     [("-spice", "addr=127.0.0.1,tls-port=5901,"
                 f"x509-cacert-file={pathutils.SPICE_CACERT_FILE},"
                 f"x509-key-file={pathutils.SPICE_CERT_FILE},"
                 f"x509-cert-file={pathutils.SPICE_CERT_FILE},"
                 "tls-ciphers=HIGH:-DES:-3DES:-EXPORT:-ADH,"),
      ("!", "-spice", ",port=5901")]),
    (C.HV_KVM_SPICE_TLS_CIPHERS, {**_SPICE, C.HV_KVM_SPICE_USE_TLS: True,
                                  C.HV_KVM_SPICE_TLS_CIPHERS: "AES256-SHA,AES128-SHA"}, {},
     [("-spice", ",tls-ciphers=AES256-SHA,,AES128-SHA,")]),
    (C.HV_KVM_SPICE_USE_VDAGENT, {**_SPICE, C.HV_KVM_SPICE_USE_VDAGENT: False}, {},
     [("!", "-chardev", "spicevmc"), ("!", "-device", "virtio-serial-pci")]),
    (C.HV_KVM_FLOPPY_IMAGE_PATH, {C.HV_KVM_FLOPPY_IMAGE_PATH: "/srv/drivers.img"}, {},
     [["-drive", "file=/srv/drivers.img,format=raw,if=floppy,readonly=on"]]),
    (C.HV_CDROM_IMAGE_PATH, {C.HV_CDROM_IMAGE_PATH: "/srv/a,b.iso"}, {},
     [["-drive", "file=/srv/a,,b.iso,format=raw,media=cdrom,readonly=on,if=none,id=cdrom0",
       "-device", "virtio-blk-pci,drive=cdrom0,id=cdrom0,addr=0xc"]]),
    (C.HV_KVM_CDROM2_IMAGE_PATH, {C.HV_KVM_CDROM2_IMAGE_PATH: "/srv/virtio.iso",
                                  C.HV_KVM_CDROM_DISK_TYPE: "ide"}, {},
     [["-drive", "file=/srv/virtio.iso,format=raw,media=cdrom,readonly=on,if=ide"]]),
    (C.HV_KVM_CDROM_DISK_TYPE, {C.HV_CDROM_IMAGE_PATH: "/srv/x.iso",
                                C.HV_KVM_CDROM_DISK_TYPE: "scsi"}, {},
     [["-device", "lsi,id=scsi"],
      ["-device", "scsi-cd,drive=cdrom0,id=cdrom0,bus=scsi.0"]]),
    (C.HV_BOOT_ORDER, {C.HV_BOOT_ORDER: "disk"}, {}, [["-boot", "order=c"]]),
    (C.HV_BOOT_ORDER, {C.HV_BOOT_ORDER: "cdrom", C.HV_CDROM_IMAGE_PATH: "/srv/x.iso",
                       C.HV_KVM_CDROM_DISK_TYPE: "ide"}, {}, [["-boot", "order=d"]]),
    (C.HV_BOOT_ORDER, {C.HV_BOOT_ORDER: "cdrom", C.HV_CDROM_IMAGE_PATH: "/srv/x.iso"}, {},
     [["-boot", "order=d"], ("-device", "drive=cdrom0,id=cdrom0,addr=0xc,bootindex=0")]),
    (C.HV_BOOT_ORDER, {C.HV_BOOT_ORDER: "floppy", C.HV_KVM_FLOPPY_IMAGE_PATH: "/f.img"}, {},
     [["-boot", "order=a"]]),
    (C.HV_BOOT_ORDER, {C.HV_BOOT_ORDER: "network"}, {}, [["-boot", "order=n"]]),
    *[(C.HV_NIC_TYPE, {C.HV_NIC_TYPE: nic_type}, {"nics": [NIC]},
       [["-netdev", "tap,id=nic-n1,fd=17",
         "-device", f"{model},netdev=nic-n1,id=nic-n1,mac=aa:00:00:11:22:33,addr=0xc"]])
      for nic_type, model in (("paravirtual", "virtio-net-pci"), ("e1000", "e1000"),
                              ("rtl8139", "rtl8139"), ("ne2k_pci", "ne2k_pci"),
                              ("i82551", "i82551"), ("i82557b", "i82557b"),
                              ("i82559er", "i82559er"), ("pcnet", "pcnet"))],
    (C.HV_NIC_TYPE, {C.HV_NIC_TYPE: "ne2k_isa"}, {"nics": [NIC]},
     [["-device", "ne2k_isa,netdev=nic-n1,id=nic-n1,mac=aa:00:00:11:22:33"]]),
    (C.HV_DISK_TYPE, {C.HV_DISK_TYPE: "paravirtual"}, {"disks": [DISK]},
     [("-device", "virtio-blk-pci,drive=disk-d1,id=disk-d1,addr=0xc")]),
    (C.HV_DISK_TYPE, {C.HV_DISK_TYPE: "ide"}, {"disks": [DISK]},
     [["-drive", "file=/dev/xenvg/disk0,format=raw,aio=threads,discard=ignore,if=ide"]]),
    (C.HV_DISK_TYPE, {C.HV_DISK_TYPE: "scsi"}, {"disks": [DISK]},
     [["-device", "lsi,id=scsi", "-drive"],
      ["-device", "scsi-hd,drive=disk-d1,id=disk-d1,bus=scsi.0"]]),
    *[(C.HV_DISK_TYPE, {C.HV_DISK_TYPE: kind}, {"disks": [DISK]},
       [("-drive", f"discard=ignore,if={kind}")]) for kind in ("sd", "mtd", "pflash")],
    (C.HV_KVM_SCSI_CONTROLLER_TYPE, {C.HV_DISK_TYPE: "scsi",
                                     C.HV_KVM_SCSI_CONTROLLER_TYPE: "virtio-scsi-pci"},
     {"disks": [DISK, DISK._replace(name="d2")]},
     [["-device", "virtio-scsi-pci,id=scsi"], ("!", "-device", "lsi")]),
    (C.HV_KVM_PCI_RESERVATIONS, {C.HV_KVM_PCI_RESERVATIONS: 20},
     {"disks": [DISK], "nics": [NIC]},
     [("-device", "id=disk-d1,addr=0x14"), ("-device", "mac=aa:00:00:11:22:33,addr=0x15")]),
    (C.HV_USB_MOUSE, {C.HV_USB_MOUSE: "mouse"}, {}, [["-usb", "-device", "usb-mouse"]]),
    (C.HV_USB_MOUSE, {C.HV_USB_MOUSE: "mouse", **_VNC}, {},
     [["-usb", "-device", "usb-mouse"], ("!", "-device", "usb-tablet")]),
    (C.HV_KEYMAP, {C.HV_KEYMAP: "fr"}, {}, [["-k", "fr"]]),
    (C.HV_MIGRATION_PORT, {C.HV_MIGRATION_PORT: 8200}, {"incoming_address": "192.0.2.1"},
     [["-incoming", "tcp:192.0.2.1:8200"]]),
    (C.HV_MIGRATION_PORT, {}, {"incoming_address": "2001:db8::1"},
     [["-incoming", "tcp:[2001:db8::1]:8102"]]),
    (C.HV_USE_LOCALTIME, {C.HV_USE_LOCALTIME: True}, {}, [["-rtc", "base=localtime"]]),
    (C.HV_DISK_CACHE, {C.HV_DISK_CACHE: "writethrough"}, {"disks": [DISK]},
     [("-drive", ",cache=writethrough,aio=threads,")]),
    (C.HV_DISK_CACHE, {C.HV_DISK_CACHE: "default"}, {"disks": [DISK]},
     [("!", "-drive", "cache=")]),
    (C.HV_KVM_DISK_AIO, {C.HV_KVM_DISK_AIO: "native", C.HV_DISK_CACHE: "none"},
     {"disks": [DISK]}, [("-drive", ",cache=none,aio=native,")]),
    (C.HV_KVM_DISK_AIO, {C.HV_KVM_DISK_AIO: "io_uring"}, {"disks": [DISK]},
     [("-drive", ",aio=io_uring,")]),
    (C.HV_DISK_DISCARD, {C.HV_DISK_DISCARD: "unmap"}, {"disks": [DISK]},
     [("-drive", ",discard=unmap,")]),
    (C.HV_SECURITY_MODEL, {C.HV_SECURITY_MODEL: "pool"}, {"runas_user": "gnt-kvm7"},
     [["-runas", "gnt-kvm7"]]),
    (C.HV_SECURITY_MODEL, {C.HV_SECURITY_MODEL: "none"}, {}, [("!", "-runas")]),
    (C.HV_SECURITY_DOMAIN, {C.HV_SECURITY_MODEL: "user", C.HV_SECURITY_DOMAIN: "nobody"},
     {}, [["-runas", "nobody"]]),
    (C.HV_KVM_FLAG, {C.HV_KVM_FLAG: "enabled"}, {},
     [["-machine", "accel=kvm"], ("!", "-enable-kvm")]),
    (C.HV_KVM_FLAG, {C.HV_KVM_FLAG: "disabled"}, {},
     [["-machine", "accel=tcg"], ("!", "-enable-kvm"), ("!", "-machine", "kvm")]),
    (C.HV_KVM_FLAG, {C.HV_KVM_FLAG: ""}, {}, [("!", "-machine"), ("!", "-enable-kvm")]),
    (C.HV_VHOST_NET, {C.HV_VHOST_NET: True}, {"nics": [NIC]},
     [["-netdev", "tap,id=nic-n1,fd=17,vhost=on"]]),
    (C.HV_VHOST_NET, {C.HV_VHOST_NET: True, C.HV_NIC_TYPE: "e1000"}, {"nics": [NIC]},
     [("!", "-netdev", "vhost")]),
    (C.HV_VIRTIO_NET_QUEUES, {C.HV_VIRTIO_NET_QUEUES: 2},
     {"nics": [NIC._replace(tap=(17, 18))]},
     [["-netdev", "tap,id=nic-n1,fds=17:18",
       "-device", "virtio-net-pci,netdev=nic-n1,id=nic-n1,mac=aa:00:00:11:22:33,"
                  "mq=on,vectors=6,addr=0xc"]]),
    (C.HV_VIRTIO_NET_QUEUES, {C.HV_VIRTIO_NET_QUEUES: 4}, {"nics": [NIC._replace(tap="tap7")]},
     [["-netdev", "tap,id=nic-n1,ifname=tap7,script=no,downscript=no,queues=4"]]),
    (C.HV_VNET_HDR, {C.HV_VNET_HDR: False}, {"nics": [NIC]},
     [["-netdev", "tap,id=nic-n1,fd=17,vnet_hdr=off"]]),
    (C.HV_KVM_USE_CHROOT, {C.HV_KVM_USE_CHROOT: True}, {},
     [["-chroot", "/run/kvm/chroot/inst1"]]),
    (C.HV_KVM_USER_SHUTDOWN, {C.HV_KVM_USER_SHUTDOWN: True}, {},
     [["-qmp", "unix:/run/kvm/ctrl/inst1.qmp,server=on,wait=off",
       "-qmp", "unix:/run/kvm/ctrl/inst1.kvmd,server=on,wait=off", "-no-shutdown"]]),
    (C.HV_KVM_USER_SHUTDOWN, {C.HV_KVM_USER_SHUTDOWN: False}, {}, [("!", "-no-shutdown")]),
    (C.HV_KVM_USE_GUEST_AGENT, {C.HV_KVM_USE_GUEST_AGENT: True}, {},
     [["-device", "virtio-serial-pci,id=vserial0",
       "-chardev", "socket,id=qga0,path=/run/kvm/ctrl/inst1.qga,server=on,wait=off",
       "-device", "virtserialport,bus=vserial0.0,chardev=qga0,name=org.qemu.guest_agent.0"]]),
    (C.HV_MEM_PATH, {C.HV_MEM_PATH: "/dev/hugepages"}, {},
     [["-mem-path", "/dev/hugepages", "-mem-prealloc"]]),
    (C.HV_REBOOT_BEHAVIOR, {C.HV_REBOOT_BEHAVIOR: "exit"}, {}, [["-no-reboot"]]),
    (C.HV_REBOOT_BEHAVIOR, {C.HV_REBOOT_BEHAVIOR: "reboot"}, {}, [("!", "-no-reboot")]),
    (C.HV_CPU_TYPE, {C.HV_CPU_TYPE: "host,+vmx"}, {}, [["-cpu", "host,+vmx"]]),
    (C.HV_CPU_CORES, {C.HV_CPU_CORES: 2}, {}, [["-smp", "2,cores=2"]]),
    (C.HV_CPU_THREADS, {C.HV_CPU_THREADS: 2}, {"vcpus": 4}, [["-smp", "4,threads=2"]]),
    (C.HV_CPU_SOCKETS, {C.HV_CPU_SOCKETS: 2, C.HV_CPU_CORES: 2, C.HV_CPU_THREADS: 1},
     {"vcpus": 4}, [["-smp", "4,sockets=2,cores=2,threads=1"]]),
    (C.HV_SOUNDHW, {C.HV_SOUNDHW: "hda"}, {}, [["-audio", "none,model=hda"],
                                               ("!", "-soundhw")]),
    (C.HV_SOUNDHW, {C.HV_SOUNDHW: "ac97", **_SPICE}, {}, [["-audio", "spice,model=ac97"]]),
    (C.HV_USB_DEVICES, {C.HV_USB_DEVICES: "keyboard host:1.2"}, {},
     [["-usb", "-device", "usb-kbd", "-device", "usb-host,hostbus=1,hostaddr=2"],
      ("!", "-usbdevice")]),
    (C.HV_USB_DEVICES, {C.HV_USB_DEVICES: "mouse", C.HV_USB_MOUSE: "tablet"}, {},
     [["-usb", "-device", "usb-tablet", "-device", "usb-mouse"]]),
    (C.HV_VGA, {C.HV_VGA: "std"}, {}, [["-vga", "std"]]),
    (C.HV_VGA, {C.HV_VGA: "virtio", **_SPICE}, {}, [["-vga", "virtio"]]),
    (C.HV_KVM_EXTRA, {C.HV_KVM_EXTRA: '-device virtio-rng-pci -fw_cfg "name=opt/x,string=a b"'},
     {}, [["-device", "virtio-rng-pci", "-fw_cfg", "name=opt/x,string=a b"]]),
    (C.HV_MACHINE_VERSION, {C.HV_MACHINE_VERSION: "pc-i440fx-7.2"}, {},
     [["-machine", "pc-i440fx-7.2"]]),
    (C.HV_MACHINE_VERSION, {C.HV_MACHINE_VERSION: "q35", C.HV_KVM_FLAG: "disabled",
                            C.HV_ACPI: False}, {},
     [["-machine", "q35,accel=tcg,acpi=off"]]),
]

#: Parameters that do not change QEMU's command line, and why
NOT_ON_ARGV = {
    C.HV_MIGRATION_BANDWIDTH: "set over QMP when a migration starts",
    C.HV_MIGRATION_DOWNTIME: "set over QMP when a migration starts",
    C.HV_MIGRATION_MODE: "chooses live or non-live migration (QMP)",
    C.HV_KVM_MIGRATION_CAPS: "set over QMP when a migration starts",
    C.HV_CPU_MASK: "the vCPU threads are pinned after start",
}


def test_every_parameter_is_in_the_table():
    in_table = {name for name, _, _, _ in TABLE}
    assert not in_table & set(NOT_ON_ARGV)
    assert in_table | set(NOT_ON_ARGV) == set(KVMHypervisor.PARAMETERS)


@pytest.mark.parametrize("name,overrides,kwargs,expect", TABLE,
                         ids=[f"{row[0]}-{i}" for i, row in enumerate(TABLE)])
def test_parameter_on_command_line(name, overrides, kwargs, expect):
    argv = _Build(overrides, **kwargs)
    _Check(argv, expect)
    assert "-enable-kvm" not in argv and "-disable-kvm" not in argv


@pytest.mark.parametrize("name", sorted(NOT_ON_ARGV))
def test_parameter_not_on_command_line(name):
    changed = {C.HV_MIGRATION_BANDWIDTH: 100, C.HV_MIGRATION_DOWNTIME: 300,
               C.HV_MIGRATION_MODE: "non-live", C.HV_KVM_MIGRATION_CAPS: "xbzrle",
               C.HV_CPU_MASK: "0:1"}[name]
    assert _Build({name: changed}, [DISK], [NIC]) == _Build({}, [DISK], [NIC])


def test_disks_and_nics_in_order():
    disks = [DISK, cmdline.DiskSpec("/dev/xenvg/disk1", "ro", "0b3d2a1c-disk"),
             ("/srv/disk2", "rw")]
    nics = [NIC, ("aa:00:00:00:00:02", "tap-x")]
    argv = _Build({}, disks, nics)
    assert _Values(argv, "-device")[:5] == [
        "virtio-blk-pci,drive=disk-d1,id=disk-d1,addr=0xc",
        "virtio-blk-pci,drive=disk-0b3d2a1c-disk,id=disk-0b3d2a1c-disk,addr=0xd",
        "virtio-blk-pci,drive=disk-2,id=disk-2,addr=0xe",
        "virtio-net-pci,netdev=nic-n1,id=nic-n1,mac=aa:00:00:11:22:33,addr=0xf",
        "virtio-net-pci,netdev=nic-1,id=nic-1,mac=aa:00:00:00:00:02,addr=0x10",
    ]
    assert ("file=/dev/xenvg/disk1,format=raw,aio=threads,discard=ignore,readonly=on,"
            "if=none,id=disk-0b3d2a1c-disk") in _Values(argv, "-drive")
    assert "tap,id=nic-1,ifname=tap-x,script=no,downscript=no" in _Values(argv, "-netdev")


def test_runtime_files_for_instance():
    files = cmdline.RuntimeFiles.ForInstance("inst1", "/var/run/ganeti/kvm-hypervisor")
    assert files == cmdline.RuntimeFiles(
        pidfile="/var/run/ganeti/kvm-hypervisor/pid/inst1",
        qmp="/var/run/ganeti/kvm-hypervisor/ctrl/inst1.qmp",
        serial="/var/run/ganeti/kvm-hypervisor/ctrl/inst1.serial",
        events_qmp="/var/run/ganeti/kvm-hypervisor/ctrl/inst1.kvmd",
        guest_agent="/var/run/ganeti/kvm-hypervisor/ctrl/inst1.qga",
        chroot="/var/run/ganeti/kvm-hypervisor/chroot/inst1")
    assert cmdline.RuntimeFiles.ForInstance("x").pidfile == \
        pathutils.RUN_DIR + "/kvm-hypervisor/pid/x"


def test_paused_and_name_escaping():
    argv = cmdline.BuildCommandLine("a,b", UUID, 128, 1, {}, [], [], FILES, paused=True)
    assert _HasFragment(argv, ["-name", "a,,b"])
    assert "-S" in argv


def _Files(**changes: Any) -> cmdline.RuntimeFiles:
    return dataclasses.replace(FILES, **changes)


ERRORS = [
    ({}, {"uuid": "not-a-uuid"}, "Invalid instance UUID"),
    ({}, {"memory": 0}, "Invalid memory size 0"),
    ({}, {"vcpus": 0}, "Invalid number of vCPUs 0"),
    ({C.HV_CPU_MASK: "0:1:2"}, {}, "has 3 entries but the instance has 2 vCPUs"),
    ({C.HV_CPU_CORES: 4}, {}, "does not divide"),
    ({}, {"disks": [("/d", "rx")]}, "Invalid access mode 'rx' of disk 0"),
    ({}, {"disks": [DISK, DISK]}, "Two devices would have the QEMU id 'disk-d1'"),
    ({C.HV_DISK_TYPE: "ide"}, {"disks": [("/d", "ro")]}, "read-only disk /d as an IDE"),
    ({}, {"nics": [("aa:bb", 3)]}, "Invalid MAC address 'aa:bb' of NIC 0"),
    ({C.HV_VIRTIO_NET_QUEUES: 2}, {"nics": [NIC]},
     r"NIC 0 needs 2 tap file descriptor\(s\) \(virtio_net_queues\), got 1"),
    ({C.HV_KVM_PCI_RESERVATIONS: 31}, {"disks": [DISK], "nics": [NIC]},
     "Too many disks and NICs for the PCI slots left above kvm_pci_reservations=31"),
    ({C.HV_VNC_BIND_ADDRESS: "0.0.0.0"}, {"network_port": None},
     "vnc_bind_address is set but the instance has no network port"),
    ({C.HV_VNC_BIND_ADDRESS: "0.0.0.0"}, {"network_port": 5000},
     "VNC needs a network port from 5900"),
    ({C.HV_VNC_BIND_ADDRESS: "eth0"}, {}, "names interface 'eth0', but no address"),
    ({C.HV_KVM_SPICE_BIND: "127.0.0.1"}, {"network_port": None},
     "spice_bind is set but the instance has no network port"),
    ({C.HV_SECURITY_MODEL: "pool"}, {}, "'pool' needs a user from the uid pool"),
    ({C.HV_KVM_USE_CHROOT: True}, {"files": _Files(chroot=None)},
     "use_chroot is set but no chroot directory"),
    ({C.HV_KVM_USER_SHUTDOWN: True}, {"files": _Files(events_qmp=None)},
     "user_shutdown is set but no second QMP socket"),
    ({C.HV_KVM_USE_GUEST_AGENT: True}, {"files": _Files(guest_agent=None)},
     "use_guest_agent is set but no guest agent socket"),
    ({}, {"files": _Files(qmp="/" + "q" * 120)}, "Unix socket path too long"),
    ({C.HV_NIC_TYPE: "virtio"}, {}, "'nic_type' fails syntax check"),
    ({C.HV_SECURITY_MODEL: "user"}, {}, "'user' needs a security_domain"),
    ({C.HV_DISK_TYPE: "ide", C.HV_CDROM_IMAGE_PATH: "/x.iso"},
     {"disks": [(f"/d{i}", "rw") for i in range(4)]},
     "5 IDE disks and CD-ROMs, but IDE has 4 units"),
]


@pytest.mark.parametrize("overrides,kwargs,match", ERRORS)
def test_errors(overrides, kwargs, match):
    args = {"name": "inst1", "uuid": UUID, "memory": 128, "vcpus": 2,
            "hvparams": {**DEFAULTS, **overrides}, "disks": [], "nics": [],
            "files": FILES, "network_port": 5901}
    args.update(kwargs)
    with pytest.raises(errors.HypervisorError, match=match):
        cmdline.BuildCommandLine(**args)


# --- Real QEMU accepts what we generate ---------------------------------------------
#
# Each combination is started paused (-S: no guest code runs) and daemonized
# with the generated argv; QEMU exits non-zero on any option it rejects. The
# daemon is then killed by the pid in its pid file.

QEMU = shutil.which("qemu-system-x86_64")
needs_qemu = pytest.mark.skipif(
    QEMU is None, reason="qemu-system-x86_64 is not installed (debian-packages.txt:"
    " qemu-system-x86; `make deps` installs it)")
_TUNSETIFF = 0x400454CA
_IFF_TAP, _IFF_NO_PI, _IFF_VNET_HDR, _IFF_MULTI_QUEUE = 0x0002, 0x1000, 0x4000, 0x0100


@pytest.fixture
def rundir() -> Iterator[Path]:
    """A short directory (Unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="gkvm", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _FreePort(low: int) -> int:
    for port in range(low, low + 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port from {low}")


def _OpenTap(name: str, flags: int) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(),
                                                _IFF_TAP | _IFF_NO_PI | flags))
    except OSError:
        os.close(fd)
        raise
    return fd


def _TapsOrSkip(count: int, flags: int) -> list[int]:
    name = f"gntk{os.getpid() % 100000}"
    fds: list[int] = []
    try:
        for _ in range(count):
            fds.append(_OpenTap(name, flags))
    except OSError as err:
        for fd in fds:
            os.close(fd)
        pytest.skip(f"cannot create tap devices here ({err}); needs root and /dev/net/tun")
    return fds


def _WriteCertificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate: (CA cert, server cert, server key) files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(subject: str, issuer: str, key: Any, signer: Any, ca: bool) -> x509.Certificate:
        return (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                .sign(signer, hashes.SHA256()))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    pem = serialization.Encoding.PEM
    files = (directory / "ca-cert.pem", directory / "server-cert.pem",
             directory / "server-key.pem")
    files[0].write_bytes(cert("test CA", "test CA", ca_key, ca_key, True).public_bytes(pem))
    files[1].write_bytes(cert("node1", "test CA", key, ca_key, False).public_bytes(pem))
    files[2].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return files


def _StopByPid(pid: int) -> None:
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        assert poller.poll(10000), f"QEMU {pid} still running after SIGKILL"
    finally:
        os.close(pidfd)


def _RunPaused(argv: list[str], pidfile: Path, pass_fds: Sequence[int] = ()) -> None:
    """Start QEMU with ``argv``; it must accept every option; then stop it."""
    assert "-S" in argv
    result = subprocess.run(argv, pass_fds=pass_fds, capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    pid = int(pidfile.read_text()) if pidfile.exists() else None
    try:
        assert result.returncode == 0, f"QEMU refused {argv}:\n{result.stderr}"
        assert pid is not None, "QEMU wrote no pid file"
        os.kill(pid, 0)
    finally:
        if pid is not None:
            _StopByPid(pid)


def _Combination(kind: str, run: Path, monkeypatch: pytest.MonkeyPatch
                 ) -> tuple[dict[str, Any], dict[str, Any], list[int]]:
    """(hvparams overrides, BuildCommandLine keywords, fds to pass) for one case."""
    files = cmdline.RuntimeFiles.ForInstance("inst1", str(run))
    for sub in ("pid", "ctrl", "chroot/inst1"):
        (run / sub).mkdir(parents=True, exist_ok=True)
    images = [run / name for name in ("disk0.img", "disk1.img", "floppy.img")]
    for image in images:
        image.write_bytes(b"\0" * 1024 * 1024)
    disks = [(str(images[0]), "rw", "d0"), (str(images[1]), "ro", "d1")]
    iso = run / "cd,1.iso"
    iso.write_bytes(b"\0" * 2048 * 16)
    password = run / "password"
    password.write_text("secret\n")
    kwargs: dict[str, Any] = {"files": files}
    fds: list[int] = []
    if kind == "minimal":
        overrides: dict[str, Any] = {}
    elif kind == "kvm-accelerator":
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            pytest.skip("/dev/kvm is not usable here")
        overrides = {C.HV_KVM_FLAG: "enabled"}
    elif kind == "disks-vnc-and-more":
        overrides = {
            C.HV_DISK_CACHE: "none", C.HV_KVM_DISK_AIO: "native", C.HV_DISK_DISCARD: "unmap",
            C.HV_CDROM_IMAGE_PATH: str(iso), C.HV_KVM_CDROM2_IMAGE_PATH: str(iso),
            C.HV_KVM_CDROM_DISK_TYPE: "ide", C.HV_BOOT_ORDER: "cdrom",
            C.HV_KVM_FLOPPY_IMAGE_PATH: str(images[2]),
            C.HV_ACPI: False, C.HV_PAE: True, C.HV_CPU_TYPE: "qemu64",
            C.HV_CPU_SOCKETS: 1, C.HV_CPU_CORES: 2, C.HV_CPU_THREADS: 1,
            C.HV_MACHINE_VERSION: "pc", C.HV_VNC_BIND_ADDRESS: "127.0.0.1",
            C.HV_VNC_TLS: True, C.HV_VNC_PASSWORD_FILE: str(password),
            C.HV_KEYMAP: "fr", C.HV_USB_DEVICES: "keyboard wacom-tablet",
            C.HV_SOUNDHW: "hda", C.HV_USE_LOCALTIME: True,
            C.HV_REBOOT_BEHAVIOR: "exit", C.HV_MEM_PATH: "/dev/shm",
            C.HV_KVM_USE_GUEST_AGENT: True, C.HV_KVM_USER_SHUTDOWN: True,
            C.HV_VGA: "std", C.HV_KVM_EXTRA: "-device virtio-rng-pci",
        }
        kwargs["disks"] = disks
        kwargs["network_port"] = _FreePort(5990)
    elif kind == "spice-scsi":
        overrides = {
            C.HV_DISK_TYPE: "scsi", C.HV_KVM_SCSI_CONTROLLER_TYPE: "megasas",
            C.HV_CDROM_IMAGE_PATH: str(iso), C.HV_BOOT_ORDER: "cdrom",
            C.HV_KVM_SPICE_BIND: "127.0.0.1", C.HV_KVM_SPICE_IP_VERSION: 4,
            C.HV_KVM_SPICE_PASSWORD_FILE: str(password),
            C.HV_KVM_SPICE_LOSSLESS_IMG_COMPR: "auto_glz",
            C.HV_KVM_SPICE_JPEG_IMG_COMPR: "never",
            C.HV_KVM_SPICE_ZLIB_GLZ_IMG_COMPR: "always",
            C.HV_KVM_SPICE_STREAMING_VIDEO_DETECTION: "filter",
            C.HV_KVM_SPICE_AUDIO_COMPR: False, C.HV_SOUNDHW: "ac97",
            C.HV_USB_MOUSE: "mouse", C.HV_SERIAL_CONSOLE: False,
            C.HV_KVM_PCI_RESERVATIONS: 16,
        }
        kwargs["disks"] = disks
        kwargs["network_port"] = _FreePort(6100)
    elif kind == "tls-x509":
        x509 = run / "x509"
        x509.mkdir()
        ca, server_cert, server_key = _WriteCertificates(x509)
        spice_pem = run / "spice.pem"
        spice_pem.write_bytes(server_key.read_bytes() + server_cert.read_bytes())
        monkeypatch.setattr(pathutils, "SPICE_CERT_FILE", str(spice_pem))
        monkeypatch.setattr(pathutils, "SPICE_CACERT_FILE", str(ca))
        overrides = {
            C.HV_VNC_BIND_ADDRESS: str(run / "vnc.sock"), C.HV_VNC_TLS: True,
            C.HV_VNC_X509: str(x509), C.HV_VNC_X509_VERIFY: True,
            C.HV_KVM_SPICE_BIND: "127.0.0.1", C.HV_KVM_SPICE_USE_TLS: True,
            C.HV_KVM_SPICE_USE_VDAGENT: False,
        }
        kwargs["network_port"] = _FreePort(6300)
    elif kind == "multiqueue-nic":
        fds = _TapsOrSkip(2, _IFF_VNET_HDR | _IFF_MULTI_QUEUE)
        overrides = {C.HV_VIRTIO_NET_QUEUES: 2}
        kwargs["nics"] = [("aa:00:00:00:00:01", tuple(fds), "n0")]
    elif kind == "e1000-incoming-user-chroot":
        if os.geteuid() != 0:
            pytest.skip("-runas and -chroot need root")
        fds = _TapsOrSkip(1, 0)
        overrides = {C.HV_NIC_TYPE: "e1000", C.HV_SECURITY_MODEL: "user",
                     C.HV_SECURITY_DOMAIN: "nobody", C.HV_KVM_USE_CHROOT: True,
                     C.HV_MIGRATION_PORT: _FreePort(8102), C.HV_BOOT_ORDER: "network"}
        kwargs["nics"] = [("aa:00:00:00:00:02", fds[0], "n0")]
        kwargs["incoming_address"] = "127.0.0.1"
    else:
        raise AssertionError(kind)
    return overrides, kwargs, fds


@needs_qemu
@pytest.mark.parametrize("kind", [
    "minimal", "kvm-accelerator", "disks-vnc-and-more", "spice-scsi", "tls-x509",
    "multiqueue-nic", "e1000-incoming-user-chroot",
])
def test_qemu_accepts(kind, rundir, monkeypatch):
    overrides, kwargs, fds = _Combination(kind, rundir, monkeypatch)
    hvparams = {**DEFAULTS, C.HV_KVM_PATH: QEMU, C.HV_KVM_FLAG: "disabled", **overrides}
    KVMHypervisor.CheckParameterSyntax(hvparams)
    files = kwargs.pop("files")
    try:
        argv = cmdline.BuildCommandLine("inst1", UUID, 64, 2, hvparams,
                                        kwargs.pop("disks", []), kwargs.pop("nics", []),
                                        files, paused=True, **kwargs)
        _RunPaused(argv, Path(files.pidfile), pass_fds=fds)
    finally:
        for fd in fds:
            os.close(fd)
