"""Tests of the DRBD status and configuration parsers (ganeti.storage.drbd_info).

The samples are written in the formats of DRBD 8.3/8.4's /proc/drbd, DRBD 9's
``drbdsetup status`` and DRBD 8.4's ``drbdsetup show``.
"""

import pytest

from ganeti import errors
from ganeti.storage import drbd_info

PROC_84 = """\
version: 8.4.11 (api:1/proto:86-101)
srcversion: 211FB288A383ED945B83420 \n\
 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----
    ns:1048576 nr:0 dw:2048 dr:1050624 al:2 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
 1: cs:SyncSource ro:Primary/Secondary ds:UpToDate/Inconsistent C r-----
    ns:130048 nr:0 dw:0 dr:130048 al:0 bm:0 lo:0 pe:2 ua:0 ap:0 ep:1 wo:f oos:918528
\t[=>..................] sync'ed: 12.4% (918528/1048576)K
\tfinish: 0:00:14 speed: 65,024 (65,024) K/sec
 2: cs:Unconfigured

 3: cs:StandAlone ro:Secondary/Unknown ds:UpToDate/DUnknown   r-----
    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
 4: cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown C r-----
    ns:0 nr:0 dw:0 dr:200 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:1048320
 5: cs:Connected ro:Secondary/Primary ds:Diskless/UpToDate C r-----
    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:b oos:0
12: cs:SyncTarget ro:Secondary/Primary ds:Inconsistent/UpToDate C r-----
    ns:0 nr:523264 dw:523264 dr:0 al:0 bm:31 lo:1 pe:0 ua:1 ap:0 ep:1 wo:f oos:9961472
\t[>...................] sync'ed:  5.0% (9728/10240)M
\tfinish: 1:02:34 speed: 64,580 (62,136) want: 61,440 K/sec
"""

PROC_83 = """\
version: 8.3.13 (api:88/proto:86-96)
GIT-hash: 83ca112086600faacab2f157bc5a9324f7bd7f77 build by builder@example.com, 2012-09-04
 0: cs:Connected ro:Primary/Primary ds:UpToDate/UpToDate C r-----
    ns:1120832 nr:0 dw:0 dr:1133040 al:0 bm:131 lo:0 pe:0 ua:0 ap:0 ep:1 wo:b oos:0
 1: cs:PausedSyncS ro:Primary/Secondary ds:UpToDate/Inconsistent C r--u--
    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:b oos:10240
\t[>....................] sync'ed:  0.1% (10240/10240)K delay_probe: 12
\tfinish: 0:00:00 speed: 0 (0) K/sec
\t  resync: used:0/61 hits:0 misses:0 starving:0 locked:0 changed:0
\t  act_log: used:0/257 hits:0 misses:0 starving:0 locked:0 changed:0
"""

PROC_9 = """\
version: 9.2.8 (api:2/proto:86-122)
GIT-hash: 2b4ad3d1ba2a7e67b9e72a52f4e4ddac10d9a3f3 build by builder@example.com, 2024-03-01
Transports (api:21): tcp (9.2.8)
"""


# --- /proc/drbd --------------------------------------------------------------------------

def test_proc_84_version():
    status = drbd_info.ParseProcDrbd(PROC_84)
    version = status.version
    assert (version.major, version.minor, version.point) == (8, 4, 11)
    assert (version.api, version.proto_min, version.proto_max) == (1, 86, 101)
    assert version.build == "211FB288A383ED945B83420"
    assert not version.is_drbd9
    assert str(version) == "8.4.11"


def test_proc_84_connected():
    st = drbd_info.ParseProcDrbd(PROC_84).GetMinor(0)
    assert (st.cstatus, st.lrole, st.rrole, st.ldisk, st.rdisk) == \
        ("Connected", "Primary", "Secondary", "UpToDate", "UpToDate")
    assert st.protocol == "C" and st.flags == "r-----"
    assert st.is_connected and st.is_primary and st.peer_secondary
    assert st.is_disk_uptodate and st.peer_disk_uptodate and st.is_in_use
    assert not (st.is_in_resync or st.is_standalone or st.is_wfconn or st.is_diskless)
    assert st.sync_percent is None and st.est_time is None
    assert st.counters["ns"] == "1048576" and st.counters["wo"] == "f"


def test_proc_84_syncing():
    status = drbd_info.ParseProcDrbd(PROC_84)
    source = status.GetMinor(1)
    assert source.is_in_resync and not source.is_connected
    assert source.sync_percent == 12.4
    assert source.est_time == 14
    assert source.peer_disk_uptodate is False
    target = status.GetMinor(12)
    assert target.cstatus == "SyncTarget" and target.is_in_resync
    assert target.sync_percent == 5.0
    assert target.est_time == 3600 + 2 * 60 + 34
    assert target.ldisk == "Inconsistent" and target.peer_primary


def test_proc_84_other_states():
    status = drbd_info.ParseProcDrbd(PROC_84)
    unconf = status.GetMinor(2)
    assert unconf.is_unconfigured and not unconf.is_in_use and unconf.lrole is None
    standalone = status.GetMinor(3)
    assert standalone.is_standalone and standalone.protocol is None
    assert standalone.flags == "r-----" and standalone.rdisk == "DUnknown"
    wfconn = status.GetMinor(4)
    assert wfconn.is_wfconn and wfconn.protocol == "C" and wfconn.is_primary
    diskless = status.GetMinor(5)
    assert diskless.is_diskless and diskless.is_connected and diskless.peer_disk_uptodate
    # not listed at all: unconfigured
    assert not status.GetMinor(99).is_in_use
    assert status.UsedMinors() == [0, 1, 3, 4, 5, 12]


def test_proc_83_and_details():
    status = drbd_info.ParseProcDrbd(PROC_83)
    assert status.version.build.startswith("83ca1120")
    assert status.GetMinor(0).is_primary and status.GetMinor(0).peer_primary
    paused = status.GetMinor(1)
    assert paused.is_in_resync and paused.sync_percent == 0.1 and paused.est_time == 0
    assert paused.flags == "r--u--"


def test_proc_drbd9_only_version():
    status = drbd_info.ParseProcDrbd(PROC_9)
    assert status.version.is_drbd9 and str(status.version) == "9.2.8"
    assert status.version.proto_max == 122
    assert status.minors == {}


def test_proc_empty_lines_and_old_st_format():
    text = ("\nversion: 8.0.12 (api:86/proto:86)\n"
            " 0: cs:Connected st:Primary/Secondary ds:UpToDate/UpToDate C r---\n")
    st = drbd_info.ParseProcDrbd(text).GetMinor(0)
    assert st.is_connected and st.is_primary and st.flags == "r---"


@pytest.mark.parametrize("text,where,reason", [
    ("version: 8.4.11 (api:1/proto:86-101)\nhello world\n", "line 2", "unknown line"),
    ("version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Primary\n",
     "line 2", "expected ro:"),
    ("version: 8.4.11 (api:1/proto:86-101)\n    ns:0 nr:0\n", "line 2",
     "without a minor line"),
    ("version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Unconfigured\n"
     " 0: cs:Unconfigured\n", "line 3", "listed twice"),
    ("version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Unconfigured extra\n", "line 2",
     "details after"),
    (" 0: cs:Unconfigured\n", "/proc/drbd", "no DRBD version line"),
    ("version: eight (api:1/proto:86)\n", "line 1", "not a DRBD version line"),
    (PROC_84.replace("sync'ed: 12.4%", "sync'ed: lots"), "line 7", "without a percentage"),
    (PROC_84.replace("finish: 0:00:14", "finish: soon"), "line 8", "H:MM:SS"),
    (PROC_84.replace("ns:1048576 nr:0", "ns:1048576 garbage"), "line 4",
     "unknown detail line"),
])
def test_proc_bad_input(text, where, reason):
    with pytest.raises(errors.BlockDeviceError) as err:
        drbd_info.ParseProcDrbd(text)
    assert where in str(err.value) and reason in str(err.value)


def test_read_proc_status(tmp_path):
    path = tmp_path / "drbd"
    path.write_text(PROC_84)
    assert drbd_info.ReadProcStatus(str(path)).UsedMinors()[0] == 0
    with pytest.raises(errors.BlockDeviceError, match="DRBD is not loaded"):
        drbd_info.ReadProcStatus(str(tmp_path / "missing"))
    path.write_text("rubbish\n")
    with pytest.raises(errors.BlockDeviceError, match=f"{path}, line 1"):
        drbd_info.ReadProcStatus(str(path))


def test_read_proc_status_default_path(node_root):
    import os
    os.makedirs(f"{node_root}/proc")
    with open(f"{node_root}/proc/drbd", "w") as handle:
        handle.write(PROC_9)
    assert drbd_info.ReadProcStatus().version.major == 9


# --- drbdsetup status (DRBD 9) -------------------------------------------------------------

STATUS_9 = """\
res-a node-id:0 role:Primary suspended:no force-io-failures:no
    write-ordering:flush
  volume:0 minor:10 disk:UpToDate backing_dev:/dev/xenvg/a0 quorum:yes blocked:no
      size:1048576 read:2048 written:4096 al-writes:1 bm-writes:0 upper-pending:0 \
lower-pending:0 al-suspended:no
  volume:1 minor:11 disk:UpToDate backing_dev:/dev/xenvg/a1 quorum:yes blocked:no
      size:2097152 read:0 written:0 al-writes:0 bm-writes:0 upper-pending:0 \
lower-pending:0 al-suspended:no
  node2 node-id:1 connection:Connected role:Secondary congested:no ap-in-flight:0
    volume:0 replication:Established peer-disk:UpToDate resync-suspended:no
        received:0 sent:4096 out-of-sync:0 pending:0 unacked:0
    volume:1 replication:SyncSource peer-disk:Inconsistent done:42.50 resync-suspended:no
        received:0 sent:891289 out-of-sync:1205862 pending:0 unacked:0 dbdt1:50.11 eta:24

res-b node-id:1 role:Secondary suspended:no
    write-ordering:flush
  volume:0 minor:12 disk:UpToDate quorum:yes blocked:no
      size:1048576 read:0 written:0 al-writes:0 bm-writes:0 upper-pending:0 \
lower-pending:0 al-suspended:no
  node3 node-id:2 connection:Connecting

res-c node-id:1 role:Secondary suspended:no
  volume:0 minor:13 disk:Diskless client:no quorum:yes blocked:no
"""

STATUS_9_SHORT = """\
web role:Secondary
  disk:Inconsistent
  alpha role:Primary
    replication:SyncTarget peer-disk:UpToDate done:19.40
  beta role:Secondary
    peer-disk:Diskless
"""


def test_drbd9_status_structure():
    resources = drbd_info.ParseDrbd9Status(STATUS_9)
    assert [r.name for r in resources] == ["res-a", "res-b", "res-c"]
    res_a = resources[0]
    assert res_a.role == "Primary" and res_a.props["write-ordering"] == "flush"
    assert [(d.volume, d.minor, d.disk) for d in res_a.devices] == \
        [(0, 10, "UpToDate"), (1, 11, "UpToDate")]
    assert res_a.devices[1].props["size"] == "2097152"
    conn = res_a.connections[0]
    assert (conn.name, conn.connection, conn.role) == ("node2", "Connected", "Secondary")
    assert [(p.volume, p.replication, p.peer_disk, p.done) for p in conn.peer_devices] == \
        [(0, "Established", "UpToDate", None), (1, "SyncSource", "Inconsistent", 42.5)]
    assert conn.peer_devices[1].props["out-of-sync"] == "1205862"
    assert resources[1].connections[0].connection == "Connecting"
    assert resources[2].connections == []


def test_drbd9_minors():
    minors = drbd_info.MinorsFromDrbd9(drbd_info.ParseDrbd9Status(STATUS_9))
    assert sorted(minors) == [10, 11, 12, 13]
    assert minors[10].is_connected and minors[10].peer_disk_uptodate
    assert minors[10].rrole == "Secondary" and minors[10].is_primary
    syncing = minors[11]
    assert syncing.cstatus == "SyncSource" and syncing.is_in_resync
    assert syncing.sync_percent == 42.5 and syncing.est_time == 24
    assert syncing.rdisk == "Inconsistent"
    waiting = minors[12]
    assert waiting.is_wfconn and waiting.rrole == "Unknown" and waiting.rdisk == "DUnknown"
    alone = minors[13]
    assert alone.is_standalone and alone.is_diskless


def test_drbd9_short_status():
    resources = drbd_info.ParseDrbd9Status(STATUS_9_SHORT)
    (res,) = resources
    assert res.devices[0].volume == 0 and res.devices[0].minor is None
    assert [(c.name, c.connection, c.role) for c in res.connections] == \
        [("alpha", "Connected", "Primary"), ("beta", "Connected", "Secondary")]
    assert res.connections[0].peer_devices[0].done == 19.4
    assert res.connections[1].peer_devices[0].peer_disk == "Diskless"
    # without --verbose there are no minors to report
    assert drbd_info.MinorsFromDrbd9(resources) == {}


@pytest.mark.parametrize("text,where,reason", [
    ("  disk:UpToDate\n", "line 1", "before any resource"),
    ("r0:x role:Primary\n", "line 1", "starts with its name"),
    ("r0 role:Primary\n  volume:0 minor:x disk:UpToDate\n", "line 2", "not a number"),
    ("r0 role:Primary\n  volume:0 minor:1 disk:UpToDate\n  peer role:Secondary\n"
     "    volume:0 replication:SyncSource done:much\n", "line 4", "done:much"),
    ("r0 role:Primary\n  volume:0 disk:UpToDate\n  garbage here\n", "line 3",
     "key:value"),
    ("r0 role:Primary\n  volume:0 minor:1 disk:UpToDate\n  size:12\n", "line 3",
     "unexpected line"),
    ("r0 role:Primary\n\t disk:UpToDate\n", "line 2", "tabs in indentation"),
])
def test_drbd9_bad_input(text, where, reason):
    with pytest.raises(errors.BlockDeviceError) as err:
        drbd_info.ParseDrbd9Status(text)
    assert where in str(err.value) and reason in str(err.value)


# --- drbdsetup show (DRBD 8.4) -------------------------------------------------------------

SHOW_84 = """\
resource resource7 {
    options {
    }
    net {
        cram-hmac-alg           "md5";
        shared-secret           "9a3c0f2e51d24b7e8c6a41f0d2b9e7c35a1f8d04";
        allow-two-primaries     yes;
        after-sb-0pri           discard-zero-changes;
        after-sb-1pri           consensus;
    }
    _remote_host {
        address                 ipv4 192.0.2.12:11007;
    }
    _this_host {
        address                 ipv4 192.0.2.11:11007;
        volume 0 {
            device                      minor 7;
            disk                        "/dev/xenvg/0b1d.disk0_data";
            meta-disk                   "/dev/xenvg/0b1d.disk0_meta" [ 0 ];
            disk {
                size                    20971520s; # bytes
                disk-flushes            no;
                resync-rate             61440k; # bytes/second
                c-plan-ahead            0; # 1/10 seconds
            }
        }
    }
}
"""

SHOW_84_DISKLESS = """\
resource resource3 {
    options {
    }
    net {
        cram-hmac-alg           "md5";
        shared-secret           "s";
    }
    _remote_host {
        address                 ipv6 [2001:db8:66::1]:11048;
    }
    _this_host {
        address                 ipv6 [2001:db8:65::1]:11048;
        volume 0 {
            device                      minor 3;
        }
    }
}
"""

SHOW_84_NO_NET = """\
resource resource5 {
    options {
    }
    net {
    }
    _this_host {
        volume 0 {
            device                      minor 5;
            disk                        "/dev/xenvg/d";
            meta-disk                   "/dev/xenvg/m";
            disk {
            }
        }
    }
}
"""

SHOW_83 = """\
disk {
\tsize            \t0s _is_default; # bytes
\ton-io-error     \tdetach;
}
net {
\ttimeout         \t60 _is_default; # 1/10 seconds
\tcram-hmac-alg   \t"md5";
\tshared-secret   \t"x";
}
syncer {
\trate            \t61440k; # bytes/second
}
protocol C;
_this_host {
\tdevice\t\t\tminor 0;
\tdisk\t\t\t"/dev/xenvg/a";
\tmeta-disk\t\t"/dev/xenvg/b" [ 0 ];
\taddress\t\t\tipv4 192.0.2.1:11000;
}
_remote_host {
\taddress\t\t\tipv4 192.0.2.2:11000;
}
"""


def test_show_84_full():
    info = drbd_info.ParseShow(SHOW_84)
    assert info.resource == "resource7" and info.minor == 7
    assert info.local_addr == ("ipv4", "192.0.2.11", 11007)
    assert info.remote_addr == ("ipv4", "192.0.2.12", 11007)
    assert info.local_dev == "/dev/xenvg/0b1d.disk0_data"
    assert (info.meta_dev, info.meta_index) == ("/dev/xenvg/0b1d.disk0_meta", 0)
    assert info.has_local_disk and info.has_network
    assert info.secret == "9a3c0f2e51d24b7e8c6a41f0d2b9e7c35a1f8d04"
    assert info.net_options["cram-hmac-alg"] == "md5" and info.allow_two_primaries
    assert info.disk_options == {"size": "20971520s", "disk-flushes": "no",
                                 "resync-rate": "61440k", "c-plan-ahead": "0"}
    assert info.protocol is None


def test_show_84_diskless_ipv6():
    info = drbd_info.ParseShow(SHOW_84_DISKLESS)
    assert info.minor == 3 and not info.has_local_disk and info.has_network
    assert info.local_addr == ("ipv6", "2001:db8:65::1", 11048)
    assert info.remote_addr == ("ipv6", "2001:db8:66::1", 11048)
    assert not info.allow_two_primaries


def test_show_84_without_network():
    info = drbd_info.ParseShow(SHOW_84_NO_NET)
    assert info.has_local_disk and not info.has_network
    assert (info.meta_dev, info.meta_index) == ("/dev/xenvg/m", None)
    assert info.local_addr is None and info.secret is None


def test_show_83_flat():
    info = drbd_info.ParseShow(SHOW_83)
    assert info.minor == 0 and info.protocol == "C"
    assert info.local_dev == "/dev/xenvg/a" and info.meta_index == 0
    assert info.local_addr == ("ipv4", "192.0.2.1", 11000)
    assert info.net_options["timeout"] == "60"
    assert info.disk_options["rate"] == "61440k" and info.disk_options["size"] == "0s"


def test_show_short_host_form_and_empty():
    info = drbd_info.ParseShow("_this_host ipv4 1.2.3.4:11000;\n"
                               "_remote_host 1.2.3.5:11000;\n")
    assert info.local_addr == ("ipv4", "1.2.3.4", 11000)
    assert info.remote_addr == ("ipv4", "1.2.3.5", 11000)
    empty = drbd_info.ParseShow("")
    assert not empty.has_local_disk and not empty.has_network and empty.minor is None


def test_show_tree_quotes_and_comments():
    tree = drbd_info.ParseShowTree('a "x y;{}" { # comment ;\n b;\n}\nc { }\n')
    assert [(s.name, s.args) for s in tree] == [("a", ["x y;{}"]), ("c", [])]
    assert tree[0].children[0].name == "b" and tree[0].children[0].lineno == 2


@pytest.mark.parametrize("text,reason", [
    ("resource r0 {\n  net {\n  }\n", "missing '}'"),
    ("resource r0 {\n}\n}\n", "unbalanced '}'"),
    ("resource r0 {\n  device minor 0\n}\n", "lacks its ';'"),
    ("disk \"unterminated;\n", "unterminated string"),
    ("_this_host {\n address ipv4 1.2.3.4;\n}\n", "expected host:port"),
    ("_this_host {\n address ipv5 1.2.3.4:1;\n}\n", "unknown address family"),
    ("_this_host {\n address ipv6 ::1:11000;\n}\n", "in brackets"),
    ("volume 0 {\n device minor x;\n}\n", "bad device"),
    ("volume 0 {\n meta-disk \"/dev/m\" [ x ];\n}\n", "bad meta-disk"),
    ("address ipv4 1.2.3.4:5;\n", "outside a host section"),
    (";\n", "without a statement"),
])
def test_show_bad_input(text, reason):
    with pytest.raises(errors.BlockDeviceError, match="drbdsetup show") as err:
        drbd_info.ParseShow(text)
    assert reason in str(err.value)
