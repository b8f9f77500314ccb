"""Tests for ganeti.ssconf."""

import os
import socket
import stat
import subprocess
import sys
import threading

import pytest

from ganeti import constants, errors, pathutils, ssconf, utils


@pytest.fixture
def store(tmp_path):
    return ssconf.SimpleStore(cfg_location=str(tmp_path))


def _Write(directory, key, text):
    path = os.path.join(directory, constants.SSCONF_FILEPREFIX + key)
    with open(path, "w") as fh:
        fh.write(text)
    return path


class TestFiles:
    def test_key_to_filename(self, store, tmp_path):
        assert store.KeyToFilename(constants.SS_CLUSTER_NAME) == \
            str(tmp_path / "ssconf_cluster_name")

    @pytest.mark.parametrize("key", ["", "nosuchkey", "../cluster_name",
                                     "ssconf_cluster_name"])
    def test_unknown_key(self, store, key):
        with pytest.raises(errors.ProgrammerError, match="Invalid key"):
            store.KeyToFilename(key)

    def test_default_location_follows_pathutils(self, tmp_path):
        root = str(tmp_path / "node1")
        try:
            pathutils._SetRoot(root)
            default = ssconf.SimpleStore()
            assert default.KeyToFilename(constants.SS_MASTER_NODE) == \
                root + "/var/lib/ganeti/ssconf_master_node"
            assert default._lockfile == \
                root + "/var/lock/ganeti-ssconf.lock"
        finally:
            pathutils.Reload()

    def test_file_list(self, store, tmp_path):
        files = store.GetFileList()
        assert len(files) == len(constants.VALID_SS_KEYS)
        assert all(os.path.dirname(name) == str(tmp_path) for name in files)


class TestWriteFiles:
    def test_write_and_read(self, store, tmp_path):
        store.WriteFiles({
            constants.SS_CLUSTER_NAME: "cluster.example.com",
            constants.SS_NODE_LIST: ["node1", "node2"],
            constants.SS_MAINTAIN_NODE_HEALTH: True,
            constants.SS_PRIMARY_IP_FAMILY: socket.AF_INET6,
        })
        path = tmp_path / "ssconf_node_list"
        assert path.read_text() == "node1\nnode2\n"
        assert stat.S_IMODE(path.stat().st_mode) == constants.SS_FILE_PERMS
        assert (tmp_path / "ssconf_cluster_name").read_text() == \
            "cluster.example.com\n"
        assert store.GetClusterName() == "cluster.example.com"
        assert store.GetNodeList() == ["node1", "node2"]
        assert store.GetMaintainNodeHealth() is True
        assert store.GetPrimaryIPFamily() == socket.AF_INET6

    def test_rewrite_read_only_file(self, store):
        store.WriteFiles({constants.SS_MASTER_NODE: "node1"})
        store.WriteFiles({constants.SS_MASTER_NODE: "node2"})
        assert store.GetMasterNode() == "node2"

    def test_lock_file_mode_whatever_the_umask(self, store, tmp_path):
        # ensure-dirs' mode: the master daemon locks it by its group
        old_umask = os.umask(0o077)
        try:
            store.WriteFiles({constants.SS_MASTER_NODE: "node1"})
        finally:
            os.umask(old_umask)
        lock = tmp_path / ssconf._LOCAL_LOCK_NAME
        assert stat.S_IMODE(lock.stat().st_mode) == 0o660

    def test_other_keys_untouched(self, store):
        store.WriteFiles({constants.SS_MASTER_NODE: "node1",
                          constants.SS_CLUSTER_NAME: "c1"})
        store.WriteFiles({constants.SS_MASTER_NODE: "node2"})
        assert store.GetClusterName() == "c1"

    def test_empty_value(self, store, tmp_path):
        store.WriteFiles({constants.SS_CLUSTER_TAGS: []})
        assert (tmp_path / "ssconf_cluster_tags").read_text() == ""
        assert store.GetClusterTags() == []

    def test_invalid_key_writes_nothing(self, store, tmp_path):
        with pytest.raises(errors.ProgrammerError):
            store.WriteFiles({constants.SS_MASTER_NODE: "node1",
                              "bogus": "x"})
        assert os.listdir(tmp_path) == []

    def test_invalid_value_type(self, store, tmp_path):
        with pytest.raises(errors.ProgrammerError):
            store.WriteFiles({constants.SS_MASTER_NODE: {"a": 1}})
        assert os.listdir(tmp_path) == []

    def test_too_large(self, store, tmp_path):
        big = ["node%06d.example.com" % i for i in range(10000)]
        with pytest.raises(errors.ConfigurationError, match="node_list"):
            store.WriteFiles({constants.SS_CLUSTER_NAME: "c",
                              constants.SS_NODE_LIST: big})
        assert os.listdir(tmp_path) == []

    def test_dry_run(self, store, tmp_path):
        store.WriteFiles({constants.SS_MASTER_NODE: "node1"}, dry_run=True)
        assert os.listdir(tmp_path) == []

    def test_lock_held_elsewhere(self, store, tmp_path, monkeypatch):
        monkeypatch.setattr(constants, "SSCONF_LOCK_TIMEOUT", 0.1)
        with utils.FileLock.Open(store._lockfile) as lock:
            lock.Shared()
            with pytest.raises(errors.LockError):
                store.WriteFiles({constants.SS_MASTER_NODE: "node1"})
        assert not os.path.exists(store.KeyToFilename(constants.SS_MASTER_NODE))
        store.WriteFiles({constants.SS_MASTER_NODE: "node1"})
        assert store.GetMasterNode() == "node1"

    def test_lock_file_invisible(self, store, tmp_path):
        store.WriteFiles({constants.SS_MASTER_NODE: "node1"})
        assert utils.ListVisibleFiles(str(tmp_path)) == ["ssconf_master_node"]

    def test_write_ssconf_files_default_store(self, tmp_path):
        root = str(tmp_path / "node1")
        try:
            pathutils._SetRoot(root)
            os.makedirs(pathutils.LOCK_DIR)
            os.makedirs(pathutils.DATA_DIR)
            ssconf.WriteSsconfFiles({constants.SS_CLUSTER_NAME: "vc"})
            assert utils.ReadFile(pathutils.DATA_DIR + "/ssconf_cluster_name") \
                == "vc\n"
        finally:
            pathutils.Reload()


class TestReadAll:
    def test_read_all(self, store):
        assert store.ReadAll() == {}
        store.WriteFiles({constants.SS_MASTER_NODE: "node1",
                          constants.SS_NODE_LIST: ["a", "b"]})
        assert store.ReadAll() == {constants.SS_MASTER_NODE: "node1",
                                   constants.SS_NODE_LIST: "a\nb"}

    def test_read_all_waits_for_writer(self, store, monkeypatch):
        store.WriteFiles({constants.SS_MASTER_NODE: "old"})
        monkeypatch.setattr(constants, "SSCONF_LOCK_TIMEOUT", 0.1)
        with utils.FileLock.Open(store._lockfile) as lock:
            lock.Exclusive()
            with pytest.raises(errors.LockError):
                store.ReadAll()
        assert store.ReadAll()[constants.SS_MASTER_NODE] == "old"

    def test_readers_never_see_half_an_update(self, store):
        keys = [constants.SS_MASTER_NODE, constants.SS_CLUSTER_NAME,
                constants.SS_MASTER_IP]
        store.WriteFiles({key: "gen0" for key in keys})
        stop = threading.Event()
        seen = []

        def _Reader():
            reader = ssconf.SimpleStore(cfg_location=store._cfg_dir)
            while not stop.is_set():
                values = reader.ReadAll()
                seen.append({values[key] for key in keys})

        thread = threading.Thread(target=_Reader)
        thread.start()
        try:
            for gen in range(1, 40):
                store.WriteFiles({key: f"gen{gen}" for key in keys})
        finally:
            stop.set()
            thread.join(timeout=30)
        assert seen
        assert all(len(generations) == 1 for generations in seen)


class TestGetters:
    def test_missing_file(self, store, tmp_path):
        with pytest.raises(errors.ConfigurationError,
                           match=str(tmp_path / "ssconf_master_node")):
            store.GetMasterNode()
        assert store._ReadFile(constants.SS_MASTER_NODE, default="x") == "x"
        assert store.ReadFile(constants.SS_MASTER_NODE, default="y") == "y"

    def test_unreadable(self, store, tmp_path):
        os.mkdir(store.KeyToFilename(constants.SS_MASTER_NODE))
        with pytest.raises(errors.ConfigurationError):
            store._ReadFile(constants.SS_MASTER_NODE, default="x")

    def test_not_utf8(self, store, tmp_path):
        with open(store.KeyToFilename(constants.SS_MASTER_NODE), "wb") as fh:
            fh.write(b"\xff\xfe")
        with pytest.raises(errors.ConfigurationError, match="UTF-8"):
            store.GetMasterNode()

    def test_oversized_file(self, store, tmp_path):
        _Write(str(tmp_path), constants.SS_NODE_LIST,
               "x" * (constants.SSCONF_MAX_SIZE + 1))
        with pytest.raises(errors.ConfigurationError, match="larger"):
            store.GetNodeList()

    def test_simple_values(self, store, tmp_path):
        d = str(tmp_path)
        _Write(d, constants.SS_CLUSTER_NAME, "cluster\n")
        _Write(d, constants.SS_MASTER_NODE, "node1.example.com\n")
        _Write(d, constants.SS_MASTER_IP, "192.0.2.10")
        _Write(d, constants.SS_MASTER_NETDEV, "br0\n")
        _Write(d, constants.SS_MASTER_NETMASK, "24\n")
        _Write(d, constants.SS_FILE_STORAGE_DIR, "/srv/fs\n")
        _Write(d, constants.SS_SHARED_FILE_STORAGE_DIR, "/srv/sfs\n")
        _Write(d, constants.SS_GLUSTER_STORAGE_DIR, "/srv/gl\n")
        _Write(d, constants.SS_RELEASE_VERSION, "3.0.0\n")
        _Write(d, constants.SS_MAINTAIN_NODE_HEALTH, "False\n")
        _Write(d, constants.SS_ENABLED_USER_SHUTDOWN, "True\n")
        _Write(d, constants.SS_UID_POOL, "1000-1010\n2000\n")
        assert store.GetClusterName() == "cluster"
        assert store.GetMasterNode() == "node1.example.com"
        assert store.GetMasterIP() == "192.0.2.10"
        assert store.GetMasterNetdev() == "br0"
        assert store.GetMasterNetmask() == 24
        assert store.GetFileStorageDir() == "/srv/fs"
        assert store.GetSharedFileStorageDir() == "/srv/sfs"
        assert store.GetGlusterStorageDir() == "/srv/gl"
        assert store.GetReleaseVersion() == "3.0.0"
        assert store.GetMaintainNodeHealth() is False
        assert store.GetEnabledUserShutdown() is True
        assert store.GetUidPool() == "1000-1010\n2000"

    def test_netmask_default_and_invalid(self, store, tmp_path):
        assert store.GetMasterNetmask() == 32
        _Write(str(tmp_path), constants.SS_PRIMARY_IP_FAMILY,
               str(socket.AF_INET6))
        assert store.GetMasterNetmask() == 128
        _Write(str(tmp_path), constants.SS_MASTER_NETMASK, "abc")
        with pytest.raises(errors.ConfigurationError, match="netmask"):
            store.GetMasterNetmask()

    def test_primary_ip_family(self, store, tmp_path):
        assert store.GetPrimaryIPFamily() == socket.AF_INET
        _Write(str(tmp_path), constants.SS_PRIMARY_IP_FAMILY, "inet")
        with pytest.raises(errors.ConfigurationError):
            store.GetPrimaryIPFamily()

    def test_lists(self, store, tmp_path):
        d = str(tmp_path)
        _Write(d, constants.SS_MASTER_CANDIDATES, "n1\nn2\n")
        _Write(d, constants.SS_MASTER_CANDIDATES_IPS, "192.0.2.1\n192.0.2.2\n")
        _Write(d, constants.SS_ONLINE_NODES, "n1\n")
        _Write(d, constants.SS_OFFLINE_NODES, "n3\n")
        _Write(d, constants.SS_INSTANCE_LIST, "i1\ni2\n")
        _Write(d, constants.SS_NODE_PRIMARY_IPS, "n1 192.0.2.1\nn2 192.0.2.2\n")
        _Write(d, constants.SS_NODE_SECONDARY_IPS, "n1 198.51.100.1\n")
        _Write(d, constants.SS_NODEGROUPS, "uuid1 default\n")
        _Write(d, constants.SS_NETWORKS, "")
        _Write(d, constants.SS_CLUSTER_TAGS, "tag1\n\ntag2\n")
        _Write(d, constants.SS_HYPERVISOR_LIST, "kvm\nfake\n")
        assert store.GetMasterCandidates() == ["n1", "n2"]
        assert store.GetMasterCandidatesIPList() == ["192.0.2.1", "192.0.2.2"]
        assert store.GetOnlineNodeList() == ["n1"]
        assert store.GetOfflineNodeList() == ["n3"]
        assert store.GetInstanceList() == ["i1", "i2"]
        assert store.GetNodePrimaryIPList() == ["n1 192.0.2.1", "n2 192.0.2.2"]
        assert store.GetNodeSecondaryIPList() == ["n1 198.51.100.1"]
        assert store.GetNodegroupList() == ["uuid1 default"]
        assert store.GetNetworkList() == []
        assert store.GetClusterTags() == ["tag1", "tag2"]
        assert store.GetHypervisorList() == ["kvm", "fake"]

    def test_maps(self, store, tmp_path):
        d = str(tmp_path)
        _Write(d, constants.SS_MASTER_CANDIDATES_CERTS, "u1=AB:CD\nu2=EF\n")
        _Write(d, constants.SS_NODE_VM_CAPABLE, "u1=True\nu2=False\n")
        _Write(d, constants.SS_SSH_PORTS, "n1=22\nn2=2222\n")
        assert store.GetMasterCandidatesCertMap() == {"u1": "AB:CD", "u2": "EF"}
        assert store.GetNodesVmCapable() == {"u1": True, "u2": False}
        assert store.GetSshPortMap() == {"n1": 22, "n2": 2222}
        assert store.GetSshPorts() == {"n1": 22, "n2": 2222}

    @pytest.mark.parametrize("text", ["n1 22\n", "n1=x\n"])
    def test_bad_ssh_ports(self, store, tmp_path, text):
        _Write(str(tmp_path), constants.SS_SSH_PORTS, text)
        with pytest.raises(errors.ConfigurationError):
            store.GetSshPortMap()

    def test_hvparams(self, store, tmp_path):
        _Write(str(tmp_path), constants.SS_HVPARAMS_PREF + constants.HT_KVM,
               "kernel_path=/boot/vmlinuz\nkernel_args=ro console=ttyS0,115200\n"
               "acpi=True\nempty=\n")
        assert store.GetHvparamsForHypervisor(constants.HT_KVM) == {
            "kernel_path": "/boot/vmlinuz",
            "kernel_args": "ro console=ttyS0,115200",
            "acpi": "True",
            "empty": "",
        }
        with pytest.raises(errors.ProgrammerError):
            store.GetHvparamsForHypervisor("vmware")
        with pytest.raises(errors.ConfigurationError):
            store.GetHvparams()   # the other hypervisors' files are missing
        for hv in constants.HYPER_TYPES:
            if hv != constants.HT_KVM:
                _Write(str(tmp_path), constants.SS_HVPARAMS_PREF + hv, "")
        hvparams = store.GetHvparams()
        assert set(hvparams) == set(constants.HYPER_TYPES)
        assert hvparams[constants.HT_FAKE] == {}
        assert hvparams[constants.HT_KVM]["acpi"] == "True"

    def test_endpoints(self, store, tmp_path):
        assert store.GetNodedEndpoints() == {}
        assert store.GetConfdEndpoints() == {}
        _Write(str(tmp_path), constants.SS_NODE_NODED_ENDPOINTS,
               "node1 127.0.1.1:1811\nnode2 [::1]:11812\n\n")
        _Write(str(tmp_path), constants.SS_NODE_CONFD_ENDPOINTS,
               "node1 127.0.1.1:1814\n")
        assert store.GetNodedEndpoints() == {"node1": ("127.0.1.1", 1811),
                                             "node2": ("::1", 11812)}
        assert store.GetConfdEndpoints() == {"node1": ("127.0.1.1", 1814)}

    @pytest.mark.parametrize("text", ["node1\n", "node1 127.0.0.1\n",
                                      "node1 127.0.0.1:x\n",
                                      "node1 127.0.0.1:1811 extra\n"])
    def test_bad_endpoints(self, store, tmp_path, text):
        _Write(str(tmp_path), constants.SS_NODE_NODED_ENDPOINTS, text)
        with pytest.raises(errors.ConfigurationError, match="node1"):
            store.GetNodedEndpoints()

    def test_endpoints_written_and_read(self, store):
        store.WriteFiles({constants.SS_NODE_NODED_ENDPOINTS: [
            f"node{i} 127.0.1.{i}:{1811 + i}" for i in range(1, 4)]})
        assert store.GetNodedEndpoints()["node3"] == ("127.0.1.3", 1814)


def test_verify_keys():
    ssconf.VerifyKeys([constants.SS_CLUSTER_NAME, constants.SS_NODE_LIST])
    ssconf.VerifyKeys([])
    with pytest.raises(errors.GenericError, match="bogus, zz"):
        ssconf.VerifyKeys(["zz", constants.SS_CLUSTER_NAME, "bogus"])


def test_verify_cluster_name(tmp_path):
    ssconf.VerifyClusterName("any", _cfg_location=str(tmp_path))  # no ssconf
    ssconf.SimpleStore(str(tmp_path)).WriteFiles(
        {constants.SS_CLUSTER_NAME: "mine"})
    ssconf.VerifyClusterName("mine", _cfg_location=str(tmp_path))
    with pytest.raises(errors.GenericError, match="'mine'"):
        ssconf.VerifyClusterName("other", _cfg_location=str(tmp_path))


class TestMasterChecks:
    @pytest.fixture
    def cluster(self, store, monkeypatch):
        store.WriteFiles({constants.SS_MASTER_NODE: "node1.example.com",
                          constants.SS_MASTER_CANDIDATES: ["node1.example.com",
                                                           "node2.example.com"]})
        me = {"name": "node1.example.com"}
        monkeypatch.setattr(utils.Hostname, "GetSysName",
                            classmethod(lambda cls: me["name"]))
        return me

    def test_get_master_and_myself(self, store, cluster):
        assert ssconf.GetMasterAndMyself(store) == ("node1.example.com",
                                                    "node1.example.com")

    def test_master(self, store, cluster):
        ssconf.CheckMaster(True, ss=store)   # returns: we are the master
        ssconf.CheckMasterCandidate(True, ss=store)

    def test_not_master(self, store, cluster, capsys):
        cluster["name"] = "node2.example.com"
        with pytest.raises(SystemExit) as info:
            ssconf.CheckMaster(True, ss=store)
        assert info.value.code == constants.EXIT_NOTMASTER
        assert "Not master" in capsys.readouterr().err
        ssconf.CheckMasterCandidate(False, ss=store)

    def test_not_candidate(self, store, cluster):
        cluster["name"] = "node3.example.com"
        with pytest.raises(SystemExit) as info:
            ssconf.CheckMasterCandidate(False, ss=store)
        assert info.value.code == constants.EXIT_NOTCANDIDATE

    def test_no_ssconf(self, tmp_path, cluster, capsys):
        empty = ssconf.SimpleStore(cfg_location=str(tmp_path / "empty"))
        with pytest.raises(SystemExit) as info:
            ssconf.CheckMaster(False, ss=empty)
        assert info.value.code == constants.EXIT_NODESETUP_ERROR
        assert "incomplete" in capsys.readouterr().err

    def test_bad_own_name(self, store, monkeypatch):
        def _fail(cls):
            raise errors.OpPrereqError("Invalid hostname 'x y'",
                                       errors.ECODE_INVAL)

        monkeypatch.setattr(utils.Hostname, "GetSysName", classmethod(_fail))
        with pytest.raises(SystemExit) as info:
            ssconf.CheckMaster(False, ss=store)
        assert info.value.code == constants.EXIT_NODESETUP_ERROR

    def test_virtual_hostname_in_subprocess(self, tmp_path):
        # A node daemon of a virtual cluster, started with its environment
        node_root = tmp_path / "node2.example.com"
        data_dir = node_root / "var" / "lib" / "ganeti"
        data_dir.mkdir(parents=True)
        store = ssconf.SimpleStore(cfg_location=str(data_dir))
        store.WriteFiles({constants.SS_MASTER_NODE: "node1.example.com"})
        env = dict(os.environ)
        env.update(pathutils.EnvironmentForHost(
            "node2.example.com", _basedir=str(tmp_path)))
        code = ("from ganeti import ssconf, pathutils\n"
                "store = ssconf.SimpleStore(pathutils.DATA_DIR)\n"
                "ssconf.CheckMaster(False, ss=store)\n")
        result = subprocess.run([sys.executable, "-c", code], env=env,
                                capture_output=True, text=True, timeout=60,
                                check=False)
        assert result.returncode == constants.EXIT_NOTMASTER, result.stderr
