"""Tests for ganeti.constants: values users and other tools rely on."""

from ganeti import constants as C


def test_ports_are_ganetis():
    assert C.DEFAULT_NODED_PORT == 1811
    assert C.DEFAULT_CONFD_PORT == 1814
    assert C.DEFAULT_RAPI_PORT == 5080
    assert C.DAEMONS_PORTS[C.CONFD] == ("udp", 1814)


def test_priorities_range():
    assert C.OP_PRIO_HIGHEST == -20
    assert C.OP_PRIO_LOWEST == 19
    assert C.OP_PRIO_HIGHEST < C.OP_PRIO_HIGH < C.OP_PRIO_NORMAL < C.OP_PRIO_LOW \
        < C.OP_PRIO_LOWEST
    assert C.OP_PRIO_SUBMIT_VALID == {C.OP_PRIO_LOW, C.OP_PRIO_NORMAL, C.OP_PRIO_HIGH}


def test_job_statuses_partition():
    assert C.JOBS_PENDING.isdisjoint(C.JOBS_FINALIZED)
    assert C.JOB_STATUS_ALL == C.JOBS_PENDING | C.JOBS_FINALIZED | {C.JOB_STATUS_RUNNING}
    assert len(C.JOB_STATUS_ALL) == 7
    assert C.OP_STATUS_ALL == C.JOB_STATUS_ALL


def test_error_codes():
    assert C.ECODE_INVAL == "wrong_input"
    assert C.ECODE_NOENT == "unknown_entity"
    assert C.ECODE_EXISTS == "already_exists"
    assert len(C.ECODE_ALL) == 10


def test_exit_codes():
    assert (C.EXIT_SUCCESS, C.EXIT_FAILURE, C.EXIT_NOTCLUSTER, C.EXIT_NOTMASTER,
            C.EXIT_NODESETUP_ERROR, C.EXIT_CONFIRMATION,
            C.EXIT_UNKNOWN_FIELD) == (0, 1, 5, 11, 12, 13, 14)


def test_hypervisors_and_templates():
    assert C.HYPER_TYPES == {"xen-pvm", "xen-hvm", "kvm", "fake", "chroot", "lxc"}
    assert C.DISK_TEMPLATES == {"diskless", "file", "sharedfile", "plain", "drbd",
                                "blockdev", "rbd", "ext", "gluster"}
    assert set(C.MAP_DISK_TEMPLATE_STORAGE_TYPE) == C.DISK_TEMPLATES
    assert set(C.DISK_DT_DEFAULTS) == C.DISK_TEMPLATES
    assert set(C.MAP_DISK_TEMPLATE_STORAGE_TYPE.values()) <= C.STORAGE_TYPES


def test_rpc_timeouts_ordered():
    order = [C.RPC_TMO_URGENT, C.RPC_TMO_FAST, C.RPC_TMO_NORMAL, C.RPC_TMO_SLOW,
             C.RPC_TMO_4HRS, C.RPC_TMO_1DAY]
    assert order == sorted(order)
    assert len(C.RPC_TIMEOUTS) == 6
    assert C.RPC_TMO_1DAY == 86400


def test_hvparam_defaults_cover_enabled_hypervisors():
    assert set(C.HVC_DEFAULTS) == C.HYPER_TYPES


def test_ipolicy_defaults_consistent():
    minmax = C.IPOLICY_DEFAULTS[C.ISPECS_MINMAX][0]
    std = C.IPOLICY_DEFAULTS[C.ISPECS_STD]
    for key in C.ISPECS_PARAMETERS:
        assert minmax[C.ISPECS_MIN][key] <= std[key] <= minmax[C.ISPECS_MAX][key]


def test_version_numbers():
    assert C.CONFIG_VERSION == C.CONFIG_MAJOR * 1000000 + C.CONFIG_MINOR * 10000 \
        + C.CONFIG_REVISION
    assert C.OS_API_VERSIONS == {10, 15, 20}


def test_ssconf_keys_unique_and_prefixed():
    for key in C.VALID_SS_KEYS:
        assert key == key.lower() and " " not in key
