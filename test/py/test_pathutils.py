"""Tests for ganeti.pathutils and its virtual-cluster helpers."""

import os
import subprocess
import sys

import pytest

from ganeti import constants, errors, pathutils

ROOTDIR = constants.GANETI_ROOTDIR_ENV
HOSTNAME = constants.GANETI_HOSTNAME_ENV


@pytest.fixture
def reload_paths():
    """Recompute paths for an environment; restore the real ones after."""
    yield pathutils.Reload
    pathutils.Reload()


def _StringPaths():
    result = {}
    for name, value in pathutils._AllPaths().items():
        if isinstance(value, str):
            result[name] = value
        elif isinstance(value, (list, tuple, frozenset)):
            for idx, item in enumerate(sorted(value)):
                result[f"{name}[{idx}]"] = item
        elif isinstance(value, dict):
            for key, item in value.items():
                result[f"{name}[{key}]"] = item
    return result


class TestRealPaths:
    @pytest.fixture(autouse=True)
    def _real(self, reload_paths):
        reload_paths({})

    def test_ganeti_locations(self):
        assert pathutils.DATA_DIR == "/var/lib/ganeti"
        assert pathutils.RUN_DIR == "/var/run/ganeti"
        assert pathutils.LOG_DIR == "/var/log/ganeti"
        assert pathutils.CONF_DIR == "/etc/ganeti"
        assert pathutils.LOCK_DIR == "/var/lock"
        assert pathutils.SOCKET_DIR == "/var/run/ganeti/socket"
        assert pathutils.MASTER_SOCKET == "/var/run/ganeti/socket/ganeti-master"
        assert pathutils.QUERY_SOCKET == "/var/run/ganeti/socket/ganeti-query"
        assert pathutils.CLUSTER_CONF_FILE == "/var/lib/ganeti/config.data"
        assert pathutils.NODED_CERT_FILE == "/var/lib/ganeti/server.pem"
        assert pathutils.NODED_CLIENT_CERT_FILE == "/var/lib/ganeti/client.pem"
        assert pathutils.RAPI_CERT_FILE == "/var/lib/ganeti/rapi.pem"
        assert pathutils.CONFD_HMAC_KEY == "/var/lib/ganeti/hmac.key"
        assert pathutils.SPICE_CERT_FILE == "/var/lib/ganeti/spice.pem"
        assert pathutils.SPICE_CACERT_FILE == "/var/lib/ganeti/spice-ca.pem"
        assert pathutils.CLUSTER_DOMAIN_SECRET_FILE == \
            "/var/lib/ganeti/cluster-domain-secret"
        assert pathutils.RAPI_USERS_FILE == "/var/lib/ganeti/rapi/users"
        assert pathutils.QUEUE_DIR == "/var/lib/ganeti/queue"
        assert pathutils.JOB_QUEUE_ARCHIVE_DIR == "/var/lib/ganeti/queue/archive"
        assert pathutils.JOB_QUEUE_LOCK_FILE == "/var/lib/ganeti/queue/lock"
        assert pathutils.JOB_QUEUE_SERIAL_FILE == "/var/lib/ganeti/queue/serial"
        assert pathutils.JOB_QUEUE_VERSION_FILE == \
            "/var/lib/ganeti/queue/version"
        assert pathutils.JOB_QUEUE_DRAIN_FILE == "/var/lib/ganeti/queue/drain"
        assert pathutils.WATCHER_STATEFILE == "/var/lib/ganeti/watcher.data"
        assert pathutils.WATCHER_PAUSEFILE == "/var/lib/ganeti/watcher.pause"
        assert pathutils.INSTANCE_STATUS_FILE == \
            "/var/run/ganeti/instance-status"
        assert pathutils.SSCONF_DIR == pathutils.DATA_DIR
        assert pathutils.SSCONF_LOCK_FILE == "/var/lock/ganeti-ssconf.lock"
        assert pathutils.HOOKS_BASE_DIR == "/etc/ganeti/hooks"
        assert pathutils.OS_SEARCH_PATH == ["/srv/ganeti/os"]
        assert pathutils.ES_SEARCH_PATH == ["/srv/ganeti/extstorage"]
        assert pathutils.DEFAULT_FILE_STORAGE_DIR == "/srv/ganeti/file-storage"
        assert pathutils.DEFAULT_SHARED_FILE_STORAGE_DIR == \
            "/srv/ganeti/shared-file-storage"
        assert pathutils.EXPORT_DIR == "/srv/ganeti/export"
        assert pathutils.LOG_OS_DIR == "/var/log/ganeti/os"
        assert pathutils.SSH_KNOWN_HOSTS_FILE == "/var/lib/ganeti/known_hosts"
        assert pathutils.ETC_HOSTS == "/etc/hosts"
        assert pathutils.CRYPTO_KEYS_DIR == "/var/run/ganeti/crypto"
        assert pathutils.IMPORT_EXPORT_DIR == "/var/run/ganeti/import-export"

    def test_log_files(self):
        assert pathutils.GetLogFilename(constants.NODED) == \
            "/var/log/ganeti/node-daemon.log"
        assert pathutils.GetLogFilename(constants.MASTERD) == \
            "/var/log/ganeti/master-daemon.log"
        assert pathutils.GetLogFilename(constants.RAPI) == \
            "/var/log/ganeti/rapi-daemon.log"
        assert pathutils.GetLogFilename(constants.CONFD) == \
            "/var/log/ganeti/conf-daemon.log"
        assert pathutils.GetLogFilename("burnin") == "/var/log/ganeti/burnin.log"
        assert pathutils.LOG_WATCHER == "/var/log/ganeti/watcher.log"
        assert pathutils.LOG_COMMANDS == "/var/log/ganeti/commands.log"
        assert pathutils.DAEMONS_LOGFILES[constants.NODED] == \
            "/var/log/ganeti/node-daemon.log"
        for bad in ("", "../x", "a/b"):
            with pytest.raises(errors.ProgrammerError):
                pathutils.GetLogFilename(bad)

    def test_pid_files(self):
        assert pathutils.GetDaemonPidFile(constants.NODED) == \
            "/var/run/ganeti/ganeti-noded.pid"
        for bad in ("", "a/b"):
            with pytest.raises(errors.ProgrammerError):
                pathutils.GetDaemonPidFile(bad)

    def test_not_virtual(self):
        assert not pathutils.IsVirtualCluster()
        assert pathutils.GetRootDirectory() == ""
        assert pathutils.GetVirtualHostname() is None
        assert pathutils.AddNodePrefix("/etc/x") == "/etc/x"
        assert pathutils.ExchangeNodeRoot("node2", "/var/x") == "/var/x"
        assert pathutils.EnvironmentForHost("node2") == {}
        assert pathutils.MakeVirtualPath("/var/x") == "/var/x"
        assert pathutils.LocalizeVirtualPath("/var/x") == "/var/x"

    def test_all_paths_absolute_and_normal(self):
        for name, value in _StringPaths().items():
            check = value.replace("%s", "x")
            assert os.path.isabs(check), name
            assert os.path.normpath(check) == check, name


class TestVirtualPaths:
    def test_every_path_prefixed(self, reload_paths, tmp_path):
        reload_paths({})
        real = _StringPaths()
        root = str(tmp_path / "node1")
        reload_paths({ROOTDIR: root, HOSTNAME: "node1"})
        virtual = _StringPaths()
        assert set(real) == set(virtual)
        for name, value in real.items():
            assert virtual[name] == root + value, name
        assert pathutils.IsVirtualCluster()
        assert pathutils.GetRootDirectory() == root
        assert pathutils.GetVirtualHostname() == "node1"
        assert pathutils.GetLogFilename(constants.NODED) == \
            root + "/var/log/ganeti/node-daemon.log"
        assert pathutils.GetDaemonPidFile("x") == root + "/var/run/ganeti/x.pid"

    def test_root_is_normalised(self, reload_paths):
        reload_paths({ROOTDIR: "/srv/vc//node1/"})
        assert pathutils.DATA_DIR == "/srv/vc/node1/var/lib/ganeti"

    def test_root_without_hostname(self, reload_paths):
        reload_paths({ROOTDIR: "/srv/vc/node1"})
        assert pathutils.DATA_DIR == "/srv/vc/node1/var/lib/ganeti"
        assert pathutils.GetVirtualHostname() is None

    def test_hostname_without_root(self, reload_paths):
        reload_paths({HOSTNAME: "node7"})
        assert pathutils.DATA_DIR == "/var/lib/ganeti"
        assert pathutils.GetVirtualHostname() == "node7"
        assert not pathutils.IsVirtualCluster()

    @pytest.mark.parametrize("root", ["/", "//", ""])
    def test_slash_root_is_real(self, reload_paths, root):
        reload_paths({ROOTDIR: root})
        assert pathutils.DATA_DIR == "/var/lib/ganeti"

    @pytest.mark.parametrize("environ", [
        {ROOTDIR: "relative/node1"},
        {ROOTDIR: "/srv/vc/node1", HOSTNAME: "node2"},
        {HOSTNAME: "a/b"},
    ])
    def test_invalid_environment(self, reload_paths, environ):
        reload_paths({ROOTDIR: "/srv/vc/keep"})
        with pytest.raises(errors.ConfigurationError):
            reload_paths(environ)
        # A failed reload leaves the previous paths in place
        assert pathutils.DATA_DIR == "/srv/vc/keep/var/lib/ganeti"

    def test_set_root(self, reload_paths):
        pathutils._SetRoot("/srv/vc/node3", hostname="node3")
        assert pathutils.CLUSTER_CONF_FILE == \
            "/srv/vc/node3/var/lib/ganeti/config.data"
        assert pathutils.GetVirtualHostname() == "node3"

    def test_helpers_follow_reload(self, reload_paths):
        reload_paths({ROOTDIR: "/srv/vc/node1", HOSTNAME: "node1"})
        conf = pathutils.CLUSTER_CONF_FILE
        assert pathutils.ExchangeNodeRoot("node2", conf) == \
            "/srv/vc/node2/var/lib/ganeti/config.data"
        assert pathutils.EnvironmentForHost("node2") == {
            ROOTDIR: "/srv/vc/node2", HOSTNAME: "node2"}
        virtual = pathutils.MakeVirtualPath(conf)
        assert virtual == "/###-VIRTUAL-PATH-###,/var/lib/ganeti/config.data"
        assert pathutils.LocalizeVirtualPath(virtual) == conf
        assert pathutils.AddNodePrefix("/etc/hosts") == \
            "/srv/vc/node1/etc/hosts"


class TestHelpers:
    def test_make_node_root(self):
        assert pathutils.MakeNodeRoot("/srv/vc", "node1") == "/srv/vc/node1"
        assert pathutils.MakeNodeRoot("/srv/vc/", "node1") == "/srv/vc/node1"
        for bad in ("", "a/b", "..", "."):
            with pytest.raises(errors.ProgrammerError):
                pathutils.MakeNodeRoot("/srv/vc", bad)

    def test_add_node_prefix(self):
        assert pathutils.AddNodePrefix("/etc/x", _noderoot="/r/n") == \
            "/r/n/etc/x"
        assert pathutils.AddNodePrefix("/etc//x/", _noderoot="") == "/etc/x"
        with pytest.raises(errors.ProgrammerError):
            pathutils.AddNodePrefix("etc/x", _noderoot="/r/n")

    def test_exchange_node_root(self):
        assert pathutils.ExchangeNodeRoot(
            "node2", "/r/node1/var/x", _basedir="/r", _noderoot="/r/node1") == \
            "/r/node2/var/x"
        assert pathutils.ExchangeNodeRoot(
            "node2", "/var/x", _basedir="", _noderoot="") == "/var/x"
        # A path outside this node's root cannot be exchanged
        with pytest.raises(errors.ProgrammerError):
            pathutils.ExchangeNodeRoot("node2", "/r/node10/var/x",
                                       _basedir="/r", _noderoot="/r/node1")
        with pytest.raises(errors.ProgrammerError):
            pathutils.ExchangeNodeRoot("node2", "/r/node1/../node3/x",
                                       _basedir="/r", _noderoot="/r/node1")

    def test_environment_for_host(self):
        assert pathutils.EnvironmentForHost("n2", _basedir="/r") == \
            {ROOTDIR: "/r/n2", HOSTNAME: "n2"}
        assert pathutils.EnvironmentForHost("n2", _basedir="") == {}

    def test_virtual_path_round_trip(self):
        for path in ("/r/n1/var/lib/x", "/r/n1/etc"):
            virtual = pathutils.MakeVirtualPath(path, _noderoot="/r/n1")
            assert virtual.startswith("/###-VIRTUAL-PATH-###,")
            assert "/r/n1" not in virtual
            assert pathutils.LocalizeVirtualPath(virtual, _noderoot="/r/n2") \
                == path.replace("/r/n1", "/r/n2")
        with pytest.raises(errors.ProgrammerError):
            pathutils.MakeVirtualPath("/elsewhere/x", _noderoot="/r/n1")
        with pytest.raises(errors.ProgrammerError):
            pathutils.LocalizeVirtualPath("/var/x", _noderoot="/r/n1")


_PRINT_PATHS = ("from ganeti import pathutils; "
                "print(pathutils.DATA_DIR); print(pathutils.MASTER_SOCKET); "
                "print(pathutils.GetVirtualHostname())")


def _ImportWith(environ):
    env = {key: value for key, value in os.environ.items()
           if key not in (ROOTDIR, HOSTNAME)}
    env.update(environ)
    return subprocess.run([sys.executable, "-c", _PRINT_PATHS], env=env,
                          capture_output=True, text=True, timeout=60,
                          check=False)


def test_environment_read_at_import(tmp_path):
    root = str(tmp_path / "node5")
    result = _ImportWith({ROOTDIR: root, HOSTNAME: "node5"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        root + "/var/lib/ganeti",
        root + "/var/run/ganeti/socket/ganeti-master",
        "node5",
    ]


def test_bad_environment_fails_import():
    result = _ImportWith({ROOTDIR: "not/absolute"})
    assert result.returncode != 0
    assert "must be an absolute path" in result.stderr
