"""``gnt-cluster renew-crypto`` and the SSH key options of ``init``.

Run on the master node, as Ganeti's: the confd HMAC key, RAPI and SPICE
certificates and the cluster domain secret are renewed here (on the
master, :mod:`ganeti.crypto_setup`) and uploaded to the other online
nodes; node certificates and SSH keys touch every node and are renewed by
``OpClusterRenewCrypto`` (``LUClusterRenewCrypto``).

The cluster certificate (``--new-cluster-certificate``) is renewed while
the cluster is stopped, as Ganeti does: the master daemons, then every
daemon of the online nodes are stopped (over SSH, or directly in a
virtual cluster: :func:`ganeti.ssh.GetRunner`), a new ``server.pem`` and
the master's ``client.pem`` are made and ``server.pem`` is copied to the
nodes; the daemons are started again, the master last, and the nodes'
client certificates are renewed by the opcode since the new cluster
certificate must sign them.

SPICE: ``--new-spice-certificate`` makes a new self-signed certificate
(``spice.pem``, whose certificate is also ``spice-ca.pem``);
``--spice-certificate FILE --spice-ca-certificate FILE`` installs a given
certificate with its key, and the certificate of the CA that signed it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ganeti import cli, constants, errors, opcodes, pathutils, utils
from ganeti.cli import ToStderr, ToStdout, cli_option
from ganeti.client import rapi_user


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def _LocalConfig() -> Any:
    from ganeti import config
    return config.ConfigWriter(accept_foreign=True, offline=True)


def _OtherOnlineNodes(cfg: Any) -> list[Any]:
    """The online nodes but the master, by name."""
    master = cfg.GetMasterNode()
    nodes = [n for n in cfg.GetAllNodesInfo().values()
             if not n.offline and n.uuid != master]
    return utils.NiceSort(nodes, key=lambda n: n.name)


def ReadSpiceCertificates(cert_file: str, cacert_file: str) -> tuple[str, str]:
    """The PEM texts of ``--spice-certificate`` (certificate and its key)
    and ``--spice-ca-certificate`` (a certificate), checked.

    @raise errors.OpPrereqError: naming the file and what is wrong
    """
    import ssl

    from ganeti.utils import x509
    pems = []
    for path, what in ((cert_file, "SPICE certificate"),
                       (cacert_file, "SPICE CA certificate")):
        try:
            pems.append(utils.ReadFile(path))
        except (OSError, UnicodeDecodeError) as err:
            raise _Inval(f"Cannot read {what} file '{path}': {err}") from err
        try:
            x509.LoadX509Certificate(pems[-1])
        except errors.GenericError as err:
            raise _Inval(f"{what} file '{path}' holds no valid PEM certificate:"
                         f" {err}") from None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert_file)
    except (ssl.SSLError, OSError) as err:
        raise _Inval(f"SPICE certificate file '{cert_file}' must hold the"
                     f" certificate and its private key: {err}") from None
    return pems[0], pems[1]


def _CheckOptions(opts: Any) -> None:
    if opts.new_rapi_cert and opts.rapi_cert:
        raise _Inval("Only one of --new-rapi-certificate and --rapi-certificate can"
                     " be given")
    if opts.new_spice_cert and (opts.spice_cert or opts.spice_cacert):
        raise _Inval("Only one of --new-spice-certificate and"
                     " --spice-certificate/--spice-ca-certificate can be given")
    if bool(opts.spice_cert) != bool(opts.spice_cacert):
        raise _Inval("--spice-certificate and --spice-ca-certificate must be given"
                     " together")
    if (opts.ssh_key_type or opts.ssh_key_bits) and not opts.new_ssh_keys:
        raise _Inval("--ssh-key-type and --ssh-key-bits need --new-ssh-keys")


def _ProbeSshHostKeys(cfg: Any) -> None:
    """``--no-ssh-key-check``: record the unknown host keys of the nodes
    (over SSH; nothing to do in a virtual cluster)."""
    from ganeti import ssh, ssh_keys
    if pathutils.IsVirtualCluster():
        return
    targets = []
    for node in _OtherOnlineNodes(cfg):
        port = int(cfg.GetNdParams(node).get(constants.ND_SSH_PORT) or 22)
        targets.append(ssh.NodeTarget(node.name, node.primary_ip, port))
    for failure in ssh_keys.ProbeHostKeys(targets):
        ToStderr("Cannot reach %s", failure)


#: Seconds to wait for a running watcher to finish on the master
WATCHER_LOCK_TIMEOUT = 60.0


def _DaemonUtil(action: str) -> str:
    """The shell command running ``daemon-util <action>`` on a node."""
    import shlex
    import sys

    from ganeti.bootstrap import node_setup
    return shlex.join([sys.executable, node_setup.DefaultDaemonUtil(), action])


def _Targets(cfg: Any) -> list[Any]:
    """How to reach the online nodes but the master."""
    from ganeti import ssh
    return [ssh.NodeTarget(node.name, node.primary_ip,
                           int(cfg.GetNdParams(node).get(constants.ND_SSH_PORT) or 22))
            for node in _OtherOnlineNodes(cfg)]


def _StartDaemons(runner: Any, targets: list[Any], master_name: str,
                  feedback: Any) -> list[str]:
    """Start the daemons of the nodes, the master last; return the failures
    (one message per node)."""
    from ganeti import daemon_util
    failures = []
    for target in targets:
        feedback(f"Starting the daemons on {target.name}")
        result = runner.Run(target, _DaemonUtil("start-all"))
        if result.failed:
            failures.append(f"{target.name}: {result.output.strip() or 'no output'}"
                            f" (exit code {result.exit_code})")
    feedback(f"Starting the daemons on {master_name}")
    try:
        for message in daemon_util.StartAll():
            logging.info("%s", message)
    except errors.GenericError as err:
        failures.append(f"{master_name}: {err}")
    return failures


def RenewClusterCertificate(cfg: Any, runner: Any = None,
                            feedback: Any = ToStdout) -> None:
    """Make a new cluster certificate while the cluster's daemons are
    stopped, and copy it to the online nodes.

    The master's client certificate is renewed with it; the other nodes'
    ones, signed by the old certificate, must be renewed afterwards
    (``OpClusterRenewCrypto(node_certificates=True)``). The daemons are
    started again whatever happened, the master last.

    @raise errors.OpExecError: naming the node where stopping, copying or
        starting failed
    """
    from ganeti import crypto_setup, daemon_util, ssh
    if runner is None:
        runner = ssh.GetRunner(cfg.GetClusterName())
    master_name = cfg.GetMasterNodeName()
    targets = _Targets(cfg)
    offline = sorted(n.name for n in cfg.GetAllNodesInfo().values() if n.offline)
    if offline:
        ToStderr("Offline node(s) %s will not get the new cluster certificate;"
                 " copy %s to them before they come back", ", ".join(offline),
                 pathutils.NODED_CERT_FILE)
    os.makedirs(pathutils.LOCK_DIR, exist_ok=True)
    # Holding the watcher's lock keeps it from restarting the daemons
    watcher_lock = utils.FileLock.Open(pathutils.WATCHER_LOCK_FILE)
    try:
        watcher_lock.Exclusive(timeout=WATCHER_LOCK_TIMEOUT)
    except errors.LockError:
        watcher_lock.Close()
        raise errors.OpExecError("The watcher is still running on the master; try"
                                 " again later") from None
    try:
        feedback("Stopping the master daemons")
        for message in daemon_util.StopMaster():
            logging.info("%s", message)
        try:
            for target in targets:
                feedback(f"Stopping the daemons on {target.name}")
                result = runner.Run(target, _DaemonUtil("stop-all"))
                if result.failed:
                    raise errors.OpExecError(
                        f"Cannot stop the daemons on {target.name} (exit code"
                        f" {result.exit_code}): {result.output.strip() or 'no output'}")
            feedback(f"Stopping the daemons on {master_name}")
            for message in daemon_util.StopAll():
                logging.info("%s", message)
            feedback("Generating a new cluster certificate")
            crypto_setup.GenerateClusterCrypto(True, False, False,
                                               master_name=master_name)
            for target in targets:
                feedback(f"Copying {pathutils.NODED_CERT_FILE} to {target.name}")
                try:
                    runner.CopyFile(target, pathutils.NODED_CERT_FILE)
                except errors.GenericError as err:
                    raise errors.OpExecError(
                        f"Cannot copy the new cluster certificate to {target.name}:"
                        f" {err}") from err
        except BaseException:
            for failure in _StartDaemons(runner, targets, master_name, feedback):
                ToStderr("Cannot start the daemons on %s", failure)
            raise
        failures = _StartDaemons(runner, targets, master_name, feedback)
    finally:
        watcher_lock.Close()
    # The master's kept-open connections still use the old certificate
    from ganeti.rpc import client as rpc_client
    rpc_client.CloseConnections()
    if failures:
        raise errors.OpExecError("Cannot start the daemons on "
                                 + "; ".join(failures))


def RenewCrypto(opts: Any, args: list[str]) -> int:
    """Renew keys and certificates; upload the master's files to the nodes."""
    if not (opts.new_confd_hmac_key or opts.new_rapi_cert or opts.new_cds
            or opts.rapi_cert or opts.cds_file or opts.new_node_certs
            or opts.new_spice_cert or opts.spice_cert or opts.spice_cacert
            or opts.new_ssh_keys or opts.new_cluster_cert):
        ToStderr("Nothing to renew: give --new-confd-hmac-key,"
                 " --new-rapi-certificate, --new-spice-certificate,"
                 " --new-ssh-keys, --new-cluster-domain-secret, ...")
        return constants.EXIT_FAILURE
    _CheckOptions(opts)
    rapi_pem = rapi_user.ReadRapiCertificate(opts.rapi_cert) if opts.rapi_cert \
        else None
    spice_pems = ReadSpiceCertificates(opts.spice_cert, opts.spice_cacert) \
        if opts.spice_cert else None
    if not opts.force and not cli.AskUser(
            "Updating certificates now. Running commands while this is going on"
            " may fail. Continue?"):
        return constants.EXIT_FAILURE
    from ganeti import config_sync, crypto_setup
    from ganeti.rpc.node import RpcRunner
    cds = utils.ReadFile(opts.cds_file).strip() if opts.cds_file else None
    cfg = _LocalConfig()
    if opts.new_ssh_keys and not opts.ssh_key_check:
        _ProbeSshHostKeys(cfg)
    if opts.new_cluster_cert:
        RenewClusterCertificate(cfg)
        cfg = _LocalConfig()
    # A new cluster certificate must sign new client certificates
    node_certs = opts.new_node_certs or opts.new_cluster_cert
    if node_certs or opts.new_ssh_keys:
        cli.SubmitOpCode(opcodes.OpClusterRenewCrypto(
            node_certificates=node_certs, renew_ssh_keys=opts.new_ssh_keys,
            ssh_key_type=opts.ssh_key_type, ssh_key_bits=opts.ssh_key_bits),
            opts=opts)
    crypto_setup.GenerateClusterCrypto(
        False, opts.new_rapi_cert, opts.new_confd_hmac_key, opts.new_cds,
        rapi_cert_pem=rapi_pem, cds=cds)
    files = []
    if opts.new_confd_hmac_key:
        files.append(pathutils.CONFD_HMAC_KEY)
    if opts.new_rapi_cert or rapi_pem:
        files.append(pathutils.RAPI_CERT_FILE)
    if opts.new_cds or cds:
        files.append(pathutils.CLUSTER_DOMAIN_SECRET_FILE)
    if spice_pems:
        crypto_setup.InstallSpiceCert(pathutils.SPICE_CERT_FILE,
                                      pathutils.SPICE_CACERT_FILE, *spice_pems)
    elif opts.new_spice_cert:
        crypto_setup.GenerateSpiceCert(pathutils.SPICE_CERT_FILE,
                                       pathutils.SPICE_CACERT_FILE)
    if spice_pems or opts.new_spice_cert:
        files.extend([pathutils.SPICE_CERT_FILE, pathutils.SPICE_CACERT_FILE])
    nodes = _OtherOnlineNodes(cfg)
    names = {n.uuid: n.name for n in nodes}
    failed = config_sync.UploadFiles(RpcRunner.FromConfig(cfg), list(names), files,
                                     names) if files else {}
    for what, msg in sorted(failed.items()):
        ToStderr("Copy failed for %s: %s", what, msg)
    if opts.new_rapi_cert or rapi_pem:
        restarted = rapi_user.RestartRapi()
        if restarted:
            ToStdout("Restarted %s: %s", constants.RAPI, restarted)
    if failed:
        return constants.EXIT_FAILURE
    ToStdout("All requested certificates and keys have been replaced.")
    return constants.EXIT_SUCCESS


def _KeyBits(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        import argparse
        raise argparse.ArgumentTypeError(f"invalid number of bits '{text}'")
    return value


SSH_KEY_TYPE_OPT = cli_option(
    "--ssh-key-type", dest="ssh_key_type", default=None,
    choices=sorted(constants.SSHK_ALL), metavar="TYPE",
    help="Type of the SSH keys Ganeti makes for root on the nodes"
    f" ({', '.join(sorted(constants.SSHK_ALL))}; default: rsa, or the current one)")
SSH_KEY_BITS_OPT = cli_option(
    "--ssh-key-bits", dest="ssh_key_bits", default=None, type=_KeyBits,
    metavar="BITS",
    help="Size of the SSH keys: dsa 1024, rsa at least 768 (default 2048),"
    " ecdsa 256, 384 or 521 (default 384)")

RENEW_OPTS = [
    cli.FORCE_OPT,
    cli_option("--new-cluster-certificate", dest="new_cluster_cert", default=False,
               action="store_true", help="Generate a new cluster certificate"),
    cli_option("--new-rapi-certificate", dest="new_rapi_cert", default=False,
               action="store_true", help="Generate a new RAPI certificate"),
    cli_option("--rapi-certificate", dest="rapi_cert", default=None,
               help="Install this RAPI certificate (PEM with key)"),
    cli_option("--new-spice-certificate", dest="new_spice_cert", default=False,
               action="store_true", help="Generate a new self-signed SPICE"
               " certificate"),
    cli_option("--spice-certificate", dest="spice_cert", default=None,
               metavar="FILE", help="Install this SPICE certificate (PEM with key)"),
    cli_option("--spice-ca-certificate", dest="spice_cacert", default=None,
               metavar="FILE", help="The certificate of the CA that signed the"
               " SPICE certificate"),
    cli_option("--new-confd-hmac-key", dest="new_confd_hmac_key", default=False,
               action="store_true", help="Create a new HMAC key for confd"),
    cli_option("--new-cluster-domain-secret", dest="new_cds", default=False,
               action="store_true", help="Create a new cluster domain secret"),
    cli_option("--cluster-domain-secret", dest="cds_file", default=None,
               help="Load the new cluster domain secret from this file"),
    cli_option("--new-node-certificates", dest="new_node_certs", default=False,
               action="store_true", help="Renew the nodes' client certificates"),
    cli_option("--new-ssh-keys", dest="new_ssh_keys", default=False,
               action="store_true", help="Renew root's SSH keys on all nodes"),
    cli_option("--no-ssh-key-check", dest="ssh_key_check", default=True,
               action="store_false", help="Accept the nodes' unknown SSH host"
               " keys (and record them)"),
    SSH_KEY_TYPE_OPT, SSH_KEY_BITS_OPT,
]
