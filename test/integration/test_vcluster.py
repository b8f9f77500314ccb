"""The cluster lifecycle on a real 3-node virtual cluster (issue 6).

One cluster, made with ``make vcluster``, serves the whole module; the tests
run in file order and each leaves the cluster as it found it (three master
candidates, node1 master, verify clean), except the last two: destroy, then
``make vcluster-stop``, which must leave no daemon alive (checked by PID).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster  # noqa: E402

from ganeti import constants, utils, vcluster  # noqa: E402
from ganeti.confd import client as confd_client  # noqa: E402
from ganeti.rapi import client as rapi_client  # noqa: E402
from ganeti.utils import x509  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

N1, N2, N3 = "node1.vcluster.test", "node2.vcluster.test", "node3.vcluster.test"
ALL_PIDS: set[int] = set()


@pytest.fixture(scope="module")
def vc():
    directory = tempfile.mkdtemp(prefix="gv", dir="/tmp")
    cluster = VirtualCluster(directory, nodes=3)
    try:
        cluster.setup(use_make=True)
        ALL_PIDS.update(cluster.daemons().values())
        yield cluster
    finally:
        leftovers = cluster.cleanup()
        shutil.rmtree(directory, ignore_errors=True)
    assert not leftovers, f"daemons survived vcluster-stop: {leftovers}"


def _Remember(vc: VirtualCluster) -> None:
    ALL_PIDS.update(vc.daemons().values())


def _NodeList(vc: VirtualCluster, fields: str = "name,role", node=None) -> dict[str, list[str]]:
    out = vc.run("gnt-node", "list", "--no-headers", "--separator=|", "-o", fields,
                 node=node).stdout
    rows = [line.split("|") for line in out.splitlines() if line.strip()]
    return {row[0]: row[1:] for row in rows}


def _Roles(vc: VirtualCluster, node=None) -> dict[str, str]:
    return {name: row[0] for name, row in _NodeList(vc, "name,role", node).items()}


def _ConfigSerial(vc: VirtualCluster, node: str) -> int:
    return vc.config(node)["serial_no"]


def _Verify(vc: VirtualCluster, node=None) -> subprocess.CompletedProcess:
    return vc.run("gnt-cluster", "verify", "--error-codes", node=node, check=False)


def _AssertClean(vc: VirtualCluster, node=None) -> None:
    result = _Verify(vc, node)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout, result.stdout


def _AssertFails(vc: VirtualCluster, *args: str, node=None, match: str = "") -> str:
    serial = _ConfigSerial(vc, vc.master())
    result = vc.run(*args, node=node, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{args} succeeded:\n{output}"
    assert match.lower() in output.lower(), output
    assert _ConfigSerial(vc, vc.master()) == serial, f"{args} changed the config"
    return output


# --- setup -------------------------------------------------------------------------

def test_setup_started_every_daemon(vc):
    daemons = vc.daemons()
    for name in (N1, N2, N3):
        assert (name, constants.NODED) in daemons
        assert (name, constants.CONFD) in daemons
    assert (N1, constants.MASTERD) in daemons
    assert vc.master() == N1
    assert ". " + os.path.join(vc.directory, "env") in vc.setup_output


def test_env_file(vc):
    env = (vc.path(N1, "/").parent / "env").read_text()
    assert f"GANETI_ROOTDIR={vc.node(N1).root}" in env
    assert f"GANETI_HOSTNAME={N1}" in env
    assert "CONFD_PORT=1814" in env
    peers = " ".join(f"{vc.net}.{i}" for i in (1, 2, 3))
    assert f"CONFD_PEERS='{peers}'" in env
    # The newcomer's path: source it in a plain shell, then gnt-node list
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("GANETI_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    clean["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    result = subprocess.run(
        ["sh", "-c", f". {vc.directory}/env && gnt-node list --no-headers -o name"
                     " && gnt-cluster getmaster"],
        env=clean, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == [N1, N2, N3, N1]


def test_confd_answers_from_env_coordinates(vc):
    # Issue 9: confd on every candidate, found through CONFD_PEERS/CONFD_PORT,
    # signing with the hmac.key at its usual path under GANETI_ROOTDIR
    env = (vc.path(N1, "/").parent / "env").read_text()
    values = dict(line[len("export "):].split("=", 1) for line in env.splitlines()
                  if line.startswith("export CONFD_"))
    peers = values["CONFD_PEERS"].strip("'").split()
    port = int(values["CONFD_PORT"])
    key = confd_client.ReadHmacKey(str(vc.path(N1, constants.DEFAULT_DATA_DIR + "/hmac.key")))
    result = confd_client.QueryOnce(key, [(peer, port) for peer in peers],
                                    constants.CONFD_REQ_NODE_ROLE_BYNAME, N2, timeout=5)
    assert result.complete, f"{result.answered} of {len(peers)} answered"
    assert result.reply.status == constants.CONFD_REPL_STATUS_OK
    assert result.reply.answer == constants.CONFD_NODE_ROLE_CANDIDATE


def test_make_vcluster_again_changes_nothing(vc):
    before_daemons = vc.daemons()
    state_file = os.path.join(vc.directory, "vcluster.json")
    env_file = os.path.join(vc.directory, "env")
    stamps = {path: os.stat(path).st_mtime_ns for path in (state_file, env_file)}
    serial = _ConfigSerial(vc, N1)
    output = vc.setup(use_make=True)
    assert f"virtual cluster in {vc.directory} is already running" in output
    assert vc.daemons() == before_daemons
    assert {path: os.stat(path).st_mtime_ns for path in stamps} == stamps
    assert _ConfigSerial(vc, N1) == serial


def test_setup_bad_input(vc, tmp_path):
    tool = [sys.executable, os.path.join(os.path.dirname(vc.setup_command()[1]),
                                         "vcluster-setup")]
    for args, message in ((["--nodes", "0"], "between 1 and"),
                          (["--net", "127.0"], "three octets"),
                          (["--net", "10.255.255"], "not local"),
                          # node1's noded port on our own net is taken
                          (["--net", vc.net], "in use")):
        result = subprocess.run([*tool, "--dir", str(tmp_path / "c"), *args],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 1, result.stdout + result.stderr
        assert message in result.stderr, result.stderr
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "precious").write_text("x")
    result = subprocess.run([*tool, "--dir", str(tmp_path / "other")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1 and "not empty" in result.stderr
    assert (tmp_path / "other" / "precious").read_text() == "x"


# --- init, add, list ------------------------------------------------------------------

def test_init_on_existing_cluster_fails(vc):
    _AssertFails(vc, "gnt-cluster", "init", "--node-ip", vc.node(1).ip,
                 "--enabled-hypervisors", "fake", "--no-etc-hosts", "--no-ssh-init",
                 "--master-netdev", "lo", "cluster.vcluster.test", node=N1)


def test_cluster_info_and_getmaster(vc):
    assert vc.run("gnt-cluster", "getmaster").stdout.strip() == N1
    info = vc.run("gnt-cluster", "info").stdout
    assert "cluster.vcluster.test" in info
    assert N1 in info


def test_list(vc):
    rows = _NodeList(vc, "name,pip,role,offline,drained,master_candidate,group,uuid,"
                         "pinst_cnt,sinst_cnt,mtotal,dtotal")
    assert list(rows) == [N1, N2, N3]
    for i, name in enumerate((N1, N2, N3), start=1):
        pip, role, offline, drained, mc, group, uuid, pinst, sinst, _, _ = rows[name]
        assert pip == f"{vc.net}.{i}"
        assert role == ("M" if name == N1 else "C")
        assert (offline, drained, mc) == ("N", "N", "Y")
        assert group == "default" and len(uuid) == 36
        assert (pinst, sinst) == ("0", "0")
    # The filter language and name selection
    out = vc.run("gnt-node", "list", "--no-headers", "-o", "name",
                 "-F", 'name =~ /^node[23]/ and offline == false').stdout
    assert out.split() == [N2, N3]
    out = vc.run("gnt-node", "list", "--no-headers", "-o", "name", N3, N1).stdout
    assert sorted(out.split()) == [N1, N3]


def test_add_bad_input(vc):
    _AssertFails(vc, "gnt-node", "add", "--node-ip", vc.node(2).ip, N2,
                 match="already")
    # A node nobody answers for: no root, no daemon at its address
    _AssertFails(vc, "gnt-node", "add", "--node-ip", f"{vc.net}.200", "node9.vcluster.test")
    assert list(_Roles(vc)) == [N1, N2, N3]


def test_remove_and_readd(vc):
    _AssertFails(vc, "gnt-node", "remove", N1, match="master")
    vc.run("gnt-node", "remove", N3)
    assert list(_Roles(vc)) == [N1, N2]
    vc.run("gnt-node", "add", "--node-ip", vc.node(3).ip, N3)
    _Remember(vc)
    assert _Roles(vc) == {N1: "M", N2: "C", N3: "C"}
    assert (N3, constants.NODED) in vc.daemons()


# --- roles ---------------------------------------------------------------------------

def test_modify_roles(vc):
    _AssertFails(vc, "gnt-node", "modify", "-O", "yes", N1, match="master")
    _AssertFails(vc, "gnt-node", "modify", "--no-such-option", N2)
    vc.run("gnt-cluster", "modify", "--candidate-pool-size", "2")
    try:
        vc.run("gnt-node", "modify", "-C", "no", N3)
        assert _Roles(vc)[N3] == "R"
        vc.run("gnt-node", "modify", "-D", "yes", N3)
        assert _Roles(vc)[N3] == "D"
        vc.run("gnt-node", "modify", "-D", "no", N3)
        assert _Roles(vc)[N3] == "R"
        vc.run("gnt-node", "modify", "-O", "yes", N3)
        assert _Roles(vc)[N3] == "O"
        vc.run("gnt-node", "modify", "-O", "no", N3)
        assert _Roles(vc)[N3] == "R"
        # Not a candidate: it must not have received the newer configs
        assert _ConfigSerial(vc, N1) > _ConfigSerial(vc, N3) or \
            not vc.path(N3, constants.DEFAULT_DATA_DIR + "/config.data").exists()
        vc.run("gnt-node", "modify", "-C", "yes", N3)
        assert _Roles(vc)[N3] == "C"
        # Promotion hands it the config at once
        assert _ConfigSerial(vc, N3) == _ConfigSerial(vc, N1)
    finally:
        vc.run("gnt-cluster", "modify", "--candidate-pool-size", "10")
    assert _Roles(vc) == {N1: "M", N2: "C", N3: "C"}


# --- verify and redist-conf ------------------------------------------------------------

def test_verify_clean(vc):
    _AssertClean(vc)


def test_config_reaches_every_candidate(vc):
    serial = _ConfigSerial(vc, N1)
    vc.run("gnt-cluster", "modify", "--candidate-pool-size", "9")
    vc.run("gnt-cluster", "modify", "--candidate-pool-size", "10")
    assert _ConfigSerial(vc, N1) >= serial + 2
    for node in (N2, N3):
        assert _ConfigSerial(vc, node) == _ConfigSerial(vc, N1)


def test_verify_reports_tampered_file_and_redist_conf_fixes_it(vc):
    secret = vc.path(N2, constants.DEFAULT_DATA_DIR + "/cluster-domain-secret")
    original = secret.read_bytes()
    os.chmod(secret, 0o600)
    secret.write_bytes(b"tampered" + original[8:])
    result = _Verify(vc)
    assert result.returncode != 0, result.stdout
    lines = [line for line in (result.stdout + result.stderr).splitlines()
             if "cluster-domain-secret" in line]
    assert lines, result.stdout
    assert any("ERROR:ECLUSTERFILECHECK:" in line or "ERROR:ENODEFILECHECK:" in line
               for line in lines), lines
    vc.run("gnt-cluster", "redist-conf")
    assert secret.read_bytes() == original
    _AssertClean(vc)


def test_verify_reports_file_permissions_and_ensure_dirs_fixes_them(vc):
    """Our extension (issue 14): a users file or config.data that anybody
    may write is an ENODEFILEPERMS error; ensure-dirs on the node fixes it."""
    users = vc.path(N2, constants.DEFAULT_DATA_DIR + "/rapi/users")
    config = vc.path(N3, constants.DEFAULT_DATA_DIR + "/config.data")
    users.chmod(0o666)
    config.chmod(0o666)
    result = _Verify(vc)
    assert result.returncode != 0, result.stdout
    hint = "(run ensure-dirs on the node to fix it)"
    assert [line for line in result.stdout.splitlines() if "ENODEFILEPERMS" in line] == [
        f"  - ERROR:ENODEFILEPERMS:node:{N2}:'{constants.DEFAULT_DATA_DIR}/rapi/users':"
        f" mode 0666, expected 0640 {hint}",
        f"  - ERROR:ENODEFILEPERMS:node:{N3}:'{constants.DEFAULT_DATA_DIR}/config.data':"
        f" mode 0666, expected 0640 {hint}"], result.stdout
    # The check changes nothing; the run fixes, then has nothing to say
    check = vc.run("ensure-dirs", "--check", node=N2, check=False)
    assert (check.returncode, check.stdout) == (1, f"{users}: mode 0666, expected 0640\n")
    assert users.stat().st_mode & 0o777 == 0o666
    assert vc.run("ensure-dirs", node=N2).stdout == f"{users}: mode 0666 changed to 0640\n"
    assert vc.run("ensure-dirs", node=N2).stdout == ""
    # On N3 through its command wrapper, as an administrator would
    fixed = subprocess.run([os.path.join(vc.node(N3).root, vcluster.NODE_CMD),
                            "ensure-dirs"], capture_output=True, text=True, timeout=60,
                           check=False, stdin=subprocess.DEVNULL)
    assert (fixed.returncode, fixed.stdout) == \
        (0, f"{config}: mode 0666 changed to 0640\n"), fixed.stderr
    assert config.stat().st_mode & 0o777 == 0o640
    _AssertClean(vc)


# --- master failover ---------------------------------------------------------------

# --- RAPI (issue 8, item 5) -------------------------------------------------------

def _RapiEnv(vc: VirtualCluster) -> dict[str, str]:
    """The environment after sourcing ``<dir>/env`` in a plain shell."""
    result = subprocess.run(["sh", "-c", f". {vc.directory}/env && env -0"],
                            capture_output=True, timeout=30, check=True)
    return dict(item.split("=", 1) for item in
                result.stdout.decode().split("\0") if "=" in item)


def _Curl(env: dict[str, str], path: str, user: str | None = None,
          password: str | None = None, method: str = "GET") -> tuple[int, str]:
    url = f"https://{env['RAPI_HOST']}:{env['RAPI_PORT']}{path}"
    cmd = ["curl", "-sk", "-X", method, "-w", "\n%{http_code}", url]
    if user is not None:
        cmd += ["-u", f"{user}:{password}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                         check=True).stdout
    body, _, code = out.rpartition("\n")
    return int(code), body


def _ServedFingerprint(env: dict[str, str]) -> str:
    import ssl
    pem = ssl.get_server_certificate((env["RAPI_HOST"], int(env["RAPI_PORT"])),
                                     timeout=30)
    return x509.GetCertDigest(x509.LoadX509Certificate(pem), "sha256")


def test_rapi_env_and_printed_curl_line(vc):
    env = _RapiEnv(vc)
    assert env["RAPI_HOST"] == vc.node(N1).ip
    assert env["RAPI_PORT"] == str(constants.DEFAULT_RAPI_PORT)
    assert env["RAPI_USER"] == vcluster.RAPI_USER
    assert len(env["RAPI_PASSWORD"]) >= 16
    assert (N1, constants.RAPI) in vc.daemons()
    # Run the curl line printed by the setup, as printed
    line = [ln.strip() for ln in vc.setup_output.splitlines()
            if ln.strip().startswith("curl ")]
    assert line, vc.setup_output
    result = subprocess.run(["sh", "-c", f". {vc.directory}/env && {line[0]}"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["name"] == vc.state().cluster_name
    assert info["master"] == N1
    # The users file reached the other nodes, hashed
    users = vc.path(N2, constants.DEFAULT_DATA_DIR + "/rapi/users").read_text()
    assert users.startswith(f"{vcluster.RAPI_USER} {{HA1}}")
    assert env["RAPI_PASSWORD"] not in users


def test_rapi_write_as_vcluster_user(vc):
    env = _RapiEnv(vc)
    code, body = _Curl(env, "/2/redistribute-config", env["RAPI_USER"],
                       env["RAPI_PASSWORD"], method="PUT")
    assert code == 200, body
    job_id = json.loads(body)
    client = rapi_client.GanetiRapiClient(env["RAPI_HOST"], int(env["RAPI_PORT"]),
                                          env["RAPI_USER"], env["RAPI_PASSWORD"])
    # The wait resource blocks server-side (about 10 s each), so bounded
    assert client.WaitForJobCompletion(job_id, retries=12), client.GetJobStatus(job_id)


def test_rapi_read_only_user_then_removed(vc):
    env = _RapiEnv(vc)
    result = subprocess.run(
        ["sh", "-c", f". {vc.directory}/env && echo ro-secret |"
                     " gnt-cluster rapi-user add --password-stdin --read-only ro"],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    listing = vc.run("gnt-cluster", "rapi-user", "list", "--no-headers").stdout
    assert listing.split("\n")[:2] == ["ro read", f"{vcluster.RAPI_USER} write"]
    assert "ro-secret" not in listing and env["RAPI_PASSWORD"] not in listing
    code, _ = _Curl(env, "/2/info", "ro", "ro-secret")
    assert code == 200
    code, body = _Curl(env, "/2/redistribute-config", "ro", "ro-secret", method="PUT")
    assert code == 403, body
    vc.run("gnt-cluster", "rapi-user", "remove", "ro")
    assert "ro" not in vc.path(N3, constants.DEFAULT_DATA_DIR + "/rapi/users").read_text()
    code, body = _Curl(env, "/2/redistribute-config", "ro", "ro-secret", method="PUT")
    assert code == 401, body
    _AssertFails(vc, "gnt-cluster", "rapi-user", "remove", "ro", match="does not exist")


def test_rapi_renew_certificate(vc, tmp_path):
    env = _RapiEnv(vc)
    before = _ServedFingerprint(env)
    vc.run("gnt-cluster", "renew-crypto", "--new-rapi-certificate", "-f")
    after = _ServedFingerprint(env)
    assert after != before
    on_n2 = x509.GetCertificateDigest(
        str(vc.path(N2, constants.DEFAULT_DATA_DIR + "/rapi.pem")), "sha256")
    assert on_n2 == after
    code, _ = _Curl(env, "/2/info", env["RAPI_USER"], env["RAPI_PASSWORD"])
    assert code == 200
    # A given certificate: a bad one is refused and changes nothing
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    _AssertFails(vc, "gnt-cluster", "renew-crypto", "-f", "--rapi-certificate",
                 str(bad), match=str(bad))
    assert _ServedFingerprint(env) == after
    good = tmp_path / "good.pem"
    x509.GenerateSelfSignedSslCert(str(good), 7)
    vc.run("gnt-cluster", "renew-crypto", "-f", "--rapi-certificate", str(good))
    assert _ServedFingerprint(env) == x509.GetCertificateDigest(str(good), "sha256")
    _Remember(vc)


def test_master_failover_and_back(vc):
    # Only a master candidate can take over
    vc.run("gnt-cluster", "modify", "--candidate-pool-size", "2")
    try:
        vc.run("gnt-node", "modify", "-C", "no", N3)
        _AssertFails(vc, "gnt-cluster", "master-failover", node=N3, match="candidate")
        assert vc.master() == N1
        vc.run("gnt-node", "modify", "-C", "yes", N3)
    finally:
        vc.run("gnt-cluster", "modify", "--candidate-pool-size", "10")

    old_pid = vc.daemons()[(N1, constants.MASTERD)]
    vc.run("gnt-cluster", "master-failover", node=N2)
    _Remember(vc)
    daemons = vc.daemons()
    assert (N2, constants.MASTERD) in daemons
    assert (N1, constants.MASTERD) not in daemons
    assert not utils.IsProcessAlive(old_pid)
    assert vc.master() == N2
    for node in (N1, N2, N3):
        assert vc.path(node, constants.DEFAULT_DATA_DIR + "/ssconf_master_node") \
            .read_text().strip() == N2
    assert vc.run("gnt-cluster", "getmaster", node=N2).stdout.strip() == N2
    # getmaster reads ssconf, so it answers on a node without a master daemon
    assert vc.run("gnt-cluster", "getmaster", node=N3).stdout.strip() == N2
    assert _Roles(vc, node=N2) == {N1: "C", N2: "M", N3: "C"}
    _AssertClean(vc, node=N2)

    vc.run("gnt-cluster", "master-failover", node=N1)
    _Remember(vc)
    daemons = vc.daemons()
    assert (N1, constants.MASTERD) in daemons
    assert (N2, constants.MASTERD) not in daemons
    assert vc.master() == N1
    assert _Roles(vc) == {N1: "M", N2: "C", N3: "C"}
    _AssertClean(vc)


# --- destroy, then stop ------------------------------------------------------------

def test_destroy(vc):
    _Remember(vc)
    assert vc.run("gnt-cluster", "destroy", check=False).returncode != 0  # no --yes-do-it
    # Only a cluster of the master alone can be destroyed
    _AssertFails(vc, "gnt-cluster", "destroy", "--yes-do-it")
    vc.run("gnt-node", "remove", N3)
    vc.run("gnt-node", "remove", N2)
    vc.run("gnt-cluster", "destroy", "--yes-do-it")
    assert (N1, constants.MASTERD) not in vc.daemons()
    assert not vc.path(N1, constants.DEFAULT_DATA_DIR + "/config.data").exists()
    result = vc.run("gnt-node", "list", check=False)
    assert result.returncode != 0


def test_make_vcluster_stop_leaves_no_daemon(vc):
    _Remember(vc)
    assert ALL_PIDS
    result = vc.stop(use_make=True)
    assert result.returncode == 0, result.stdout
    alive = [pid for pid in ALL_PIDS if vcluster.BelongsTo(pid, vc.directory)]
    assert not alive, f"still running: {alive}"
    assert vc.daemons() == {}
    again = vc.stop(use_make=True)
    assert again.returncode == 0, again.stdout
    assert "was running" in again.stdout
