"""Tests of the DRBD 8.4 command lines (ganeti.storage.drbd_cmdgen)."""

import pytest

from ganeti import constants, errors
from ganeti.storage import drbd_cmdgen as cg

DEFAULTS = constants.DISK_DT_DEFAULTS[constants.DT_DRBD8]


def _Params(**changes):
    params = dict(DEFAULTS)
    params.update({key.replace("_", "-"): value for key, value in changes.items()})
    return params


def test_names():
    assert cg.ResourceName(3) == "resource3"
    assert cg.DevPath(3) == "/dev/drbd3"


def test_minor_setup():
    assert cg.NewResourceCmd(5) == ["drbdsetup", "new-resource", "resource5"]
    assert cg.NewMinorCmd(5) == ["drbdsetup", "new-minor", "resource5", "5", "0"]


def test_attach_defaults():
    assert cg.AttachCmd(2, "/dev/xenvg/d", "/dev/xenvg/m", 1024, {}) == [
        "drbdsetup", "attach", "2", "/dev/xenvg/d", "/dev/xenvg/m", "0",
        "--on-io-error=detach", "--size", "1024m",
        "--c-plan-ahead", "0", "--resync-rate", "61440"]


def test_attach_barriers_and_custom():
    params = _Params(disk_barriers="bfd", meta_barriers=True, resync_rate=1000,
                     disk_custom="--al-extents 3389 --disk-timeout '0'")
    assert cg.AttachCmd(0, "/dev/a", "/dev/b", None, params) == [
        "drbdsetup", "attach", "0", "/dev/a", "/dev/b", "0", "--on-io-error=detach",
        "--disk-barrier=no", "--disk-flushes=no", "--disk-drain=no", "--md-flushes=no",
        "--c-plan-ahead", "0", "--resync-rate", "1000",
        "--al-extents", "3389", "--disk-timeout", "0"]


@pytest.mark.parametrize("value,expected", [
    ("n", []),
    ("", []),
    ("b", ["--disk-barrier=no"]),
    ("f", ["--disk-flushes=no"]),
    ("d", ["--disk-drain=no"]),
    ("df", ["--disk-flushes=no", "--disk-drain=no"]),
])
def test_barrier_args(value, expected):
    assert cg.BarrierArgs(value, False) == expected
    assert cg.BarrierArgs(value, True) == expected + ["--md-flushes=no"]


def test_barrier_args_invalid():
    with pytest.raises(errors.BlockDeviceError, match="'bx'.*unknown: x"):
        cg.BarrierArgs("bx", False)


def test_dynamic_resync():
    params = _Params(dynamic_resync=True, c_plan_ahead=20, c_fill_target=100,
                     c_delay_target=10, c_max_rate=102400, c_min_rate=4096)
    assert cg.SyncArgs(params) == [
        "--c-plan-ahead", "20", "--c-fill-target", "100", "--c-delay-target", "10",
        "--c-max-rate", "102400", "--c-min-rate", "4096"]
    with pytest.raises(errors.BlockDeviceError, match="c-plan-ahead"):
        cg.SyncArgs(_Params(dynamic_resync=True, c_plan_ahead=0))


def test_custom_bad_quoting():
    with pytest.raises(errors.BlockDeviceError, match="disk-custom"):
        cg.AttachCmd(0, "/dev/a", "/dev/b", 1, _Params(disk_custom="--x 'open"))


def test_connect_ipv4():
    assert cg.ConnectCmd(4, "ipv4", "192.0.2.1", 11004, "192.0.2.2", 11004, {},
                         secret="abc") == [
        "drbdsetup", "connect", "resource4", "ipv4:192.0.2.1:11004",
        "ipv4:192.0.2.2:11004", "--protocol", "C",
        "--after-sb-0pri", "discard-zero-changes", "--after-sb-1pri", "consensus",
        "--cram-hmac-alg", "md5", "--shared-secret", "abc"]


def test_connect_ipv6_dual_primary_custom():
    params = _Params(protocol="A", net_custom="--max-buffers 8000 --tcp-cork=no")
    assert cg.ConnectCmd(1, "ipv6", "2001:db8::1", 11001, "2001:db8::2", 11001, params,
                         dual_primary=True) == [
        "drbdsetup", "connect", "resource1", "ipv6:[2001:db8::1]:11001",
        "ipv6:[2001:db8::2]:11001", "--protocol", "A",
        "--after-sb-0pri", "discard-zero-changes", "--after-sb-1pri", "consensus",
        "--allow-two-primaries", "--max-buffers", "8000", "--tcp-cork=no"]


def test_connect_bad_protocol_and_family():
    with pytest.raises(errors.BlockDeviceError, match="protocol 'D'"):
        cg.ConnectCmd(1, "ipv4", "a", 1, "b", 1, _Params(protocol="D"))
    with pytest.raises(errors.ProgrammerError, match="family"):
        cg.FormatAddress("ipx", "a", 1)


def test_network_and_role_commands():
    assert cg.DisconnectCmd("ipv4", "192.0.2.1", 11000, "192.0.2.2", 11000) == [
        "drbdsetup", "disconnect", "ipv4:192.0.2.1:11000", "ipv4:192.0.2.2:11000"]
    assert cg.DetachCmd(7) == ["drbdsetup", "detach", "7"]
    assert cg.DownCmd(7) == ["drbdsetup", "down", "resource7"]
    assert cg.PrimaryCmd(7) == ["drbdsetup", "primary", "7"]
    assert cg.PrimaryCmd(7, force=True) == ["drbdsetup", "primary", "7", "--force"]
    assert cg.SecondaryCmd(7) == ["drbdsetup", "secondary", "7"]
    assert cg.ResizeCmd(7, 2048) == ["drbdsetup", "resize", "7", "--size", "2048m"]


def test_meta_show_status():
    assert cg.CreateMetaCmd(3, "/dev/xenvg/m") == [
        "drbdmeta", "--force", "/dev/drbd3", "v08", "/dev/xenvg/m", "0", "create-md"]
    assert cg.ShowCmd(3) == ["drbdsetup", "show", "3"]
    assert cg.ShowCmd("all") == ["drbdsetup", "show", "all"]
    with pytest.raises(errors.ProgrammerError):
        cg.ShowCmd("resource3")
    assert cg.StatusCmd() == ["drbdsetup", "status", "--verbose", "--statistics"]


def test_fill_params():
    assert cg.FillParams(None) == DEFAULTS
    assert cg.FillParams({constants.DRBD_PROTOCOL: "B"})[constants.DRBD_PROTOCOL] == "B"
