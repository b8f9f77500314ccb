"""Running instances: startup, shutdown, reboot, console, and reinstall.

Each LU locks the instance and its nodes (the Big Ganeti Lock shared).
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, objects
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn
from ganeti.cmdlib.cluster import CheckBeParams, CheckHvParams, MergeParams


class LUInstanceStartup(iu.InstanceLU):
    """Start an instance (memory check, then the node starts it)."""

    HPATH = "instance-start"
    LOCK_NODE_RES = True

    def CheckArguments(self) -> None:
        """Temporary parameters must be valid."""
        self.op.beparams = CheckBeParams(self.op.beparams or {})

    def CheckPrereq(self) -> None:
        """Not offline, node online, enough memory unless already running."""
        super().CheckPrereq()
        inst, cluster = self.instance, self.cfg.GetClusterInfo()
        if inst.admin_state == constants.ADMINST_OFFLINE:
            raise errors.OpPrereqError(
                f"Instance {inst.name} is marked offline, it cannot be started; mark"
                " it online first (gnt-instance modify --online)", errors.ECODE_STATE)
        iu.CheckNodeOnline(self.cfg, inst.primary_node,
                           "Cannot start an instance on an offline node")
        iu.CheckNicsBridgesExist(self, inst.nics, inst.primary_node)
        self.hvp = cluster.FillHV(inst)
        if self.op.hvparams:
            self.hvp.update(self.op.hvparams)
            self.hvp = CheckHvParams(inst.hypervisor, self.hvp)
            self.op.hvparams = {key: self.hvp[key] for key in self.op.hvparams}
        bep = cluster.FillBE(inst)
        bep.update(self.op.beparams)
        result = self.rpc.call_instance_info([inst.primary_node], inst.name,
                                             inst.hypervisor, self.hvp)[inst.primary_node]
        result.Raise(f"Error checking node {iu.NodeName(self.cfg, inst.primary_node)}",
                     prereq=True, ecode=errors.ECODE_ENVIRON)
        # A guest that shut itself down under user_shutdown keeps its
        # (stopped) process: not running; the node's start replaces it
        self.running = iu.IsLiveAndRunning(result.payload)
        if not self.running:
            iu.CheckNodeFreeMemory(self, inst.primary_node,
                                   f"starting instance {inst.name}",
                                   int(bep[constants.BE_MAXMEM]), inst.hypervisor,
                                   self.hvp)

    def BuildHooksEnv(self) -> dict[str, Any]:
        """The instance variables plus FORCE."""
        env = super().BuildHooksEnv()
        env["FORCE"] = self.op.force
        return env

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Mark up (unless no_remember) and start."""
        inst = self.instance
        if not self.op.no_remember:
            inst = self.cfg.MarkInstanceUp(inst.uuid)
        if self.running:
            feedback_fn(f"Instance {inst.name} is already running")
            return
        iu.StartInstanceOnNode(self, inst, self.op.hvparams, self.op.beparams,
                               self.op.startup_paused, getattr(self.op, "reason", None))


class LUInstanceShutdown(iu.InstanceLU):
    """Stop an instance (soft, then hard after the timeout)."""

    HPATH = "instance-stop"

    def CheckPrereq(self) -> None:
        """The primary node must be online (unless ignore_offline_nodes)."""
        super().CheckPrereq()
        node = self.cfg.GetNodeInfo(self.instance.primary_node)
        if node.offline and not self.op.ignore_offline_nodes:
            raise errors.OpPrereqError(
                f"Cannot shut down instance {self.instance.name}: its node"
                f" {node.name} is offline (use --ignore-offline)", errors.ECODE_STATE)

    def BuildHooksEnv(self) -> dict[str, Any]:
        """The instance variables plus TIMEOUT."""
        env = super().BuildHooksEnv()
        env["TIMEOUT"] = self.op.timeout
        return env

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Mark down (unless no_remember), stop, deactivate the disks."""
        inst = self.instance
        if not self.op.no_remember:
            if self.op.admin_state_source == constants.USER_SOURCE:
                self.cfg.MarkInstanceUserDown(inst.uuid)
            else:
                self.cfg.MarkInstanceDown(inst.uuid)
        node = self.cfg.GetNodeInfo(inst.primary_node)
        if node.offline:
            feedback_fn(f"Primary node {node.name} is offline, not contacting it")
            return
        result = self.rpc.call_instance_shutdown(
            inst.primary_node, iu.InstanceRpcDict(self.cfg, inst), self.op.timeout,
            getattr(self.op, "reason", None) or [])
        if result.fail_msg:
            self.LogWarning(f"Could not shutdown instance {inst.name}: {result.fail_msg}")
        iu.ShutdownInstanceDisks(self, inst)


class LUInstanceReboot(iu.InstanceLU):
    """Reboot an instance: soft or hard on the node, full from the master."""

    HPATH = "instance-reboot"

    def CheckPrereq(self) -> None:
        """Node online; the instance must not be offline."""
        super().CheckPrereq()
        inst = self.instance
        iu.CheckNodeOnline(self.cfg, inst.primary_node)
        if inst.admin_state == constants.ADMINST_OFFLINE:
            raise errors.OpPrereqError(
                f"Instance {inst.name} is marked offline, it cannot be rebooted",
                errors.ECODE_STATE)

    def BuildHooksEnv(self) -> dict[str, Any]:
        """The instance variables plus REBOOT_TYPE and SHUTDOWN_TIMEOUT."""
        env = super().BuildHooksEnv()
        env["IGNORE_SECONDARIES"] = self.op.ignore_secondaries
        env["REBOOT_TYPE"] = self.op.reboot_type
        env["SHUTDOWN_TIMEOUT"] = self.op.shutdown_timeout
        return env

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Soft/hard: the node reboots a running instance (a stopped one is
        started); full: shutdown, disks down, start. The instance is then
        marked up."""
        inst, op = self.instance, self.op
        node = inst.primary_node
        reason = getattr(op, "reason", None) or []
        info = self.rpc.call_instance_info([node], inst.name, inst.hypervisor,
                                           self.cfg.GetClusterInfo().FillHV(inst))[node]
        info.Raise("Error checking node " + iu.NodeName(self.cfg, node))
        running = iu.IsLiveAndRunning(info.payload)
        if running and op.reboot_type in (constants.INSTANCE_REBOOT_SOFT,
                                          constants.INSTANCE_REBOOT_HARD):
            result = self.rpc.call_instance_reboot(
                node, iu.InstanceRpcDict(self.cfg, inst), op.reboot_type,
                op.shutdown_timeout, reason)
            result.Raise(f"Could not reboot instance {inst.name}")
            self.cfg.MarkInstanceUp(inst.uuid)
            return
        if running:
            result = self.rpc.call_instance_shutdown(
                node, iu.InstanceRpcDict(self.cfg, inst), op.shutdown_timeout, reason)
            result.Raise(f"Could not shutdown instance {inst.name} for full reboot")
            iu.ShutdownInstanceDisks(self, inst)
        else:
            feedback_fn(f"Instance {inst.name} was not running, starting it")
        iu.StartInstanceOnNode(self, inst, reason=reason)
        # As in Ganeti, a rebooted instance is marked up
        self.cfg.MarkInstanceUp(inst.uuid)


class LUInstanceConsole(iu.InstanceLU):
    """Return how to reach an instance's console."""

    def CheckPrereq(self) -> None:
        """Node online."""
        super().CheckPrereq()
        iu.CheckNodeOnline(self.cfg, self.instance.primary_node)

    def Exec(self, feedback_fn: FeedbackFn) -> dict[str, Any]:
        """The console dict from the node; an error if the instance is down."""
        inst, cfg = self.instance, self.cfg
        node_uuid = inst.primary_node
        cluster = cfg.GetClusterInfo()
        hvp = cluster.FillHV(inst)
        info = self.rpc.call_instance_info([node_uuid], inst.name, inst.hypervisor,
                                           hvp)[node_uuid]
        info.Raise(f"Error checking node {iu.NodeName(cfg, node_uuid)}")
        if not info.payload:
            if inst.admin_state == constants.ADMINST_UP:
                state = constants.INSTST_ERRORDOWN
            elif inst.admin_state == constants.ADMINST_DOWN:
                state = constants.INSTST_ADMINDOWN
            else:
                state = constants.INSTST_ADMINOFFLINE
            raise errors.OpExecError(f"Instance {inst.name} is not running (state is"
                                     f" {state})")
        node = cfg.GetNodeInfo(node_uuid)
        group = cfg.GetNodeGroup(node.group)
        request = {inst.name: {
            "instance": iu.InstanceRpcDict(cfg, inst), "node": node.ToDict(),
            "group": group.ToDict() if group is not None else {},
            "hvParams": hvp, "beParams": cluster.FillBE(inst)}}
        result = self.rpc.call_instance_console_info([node_uuid], request)[node_uuid]
        result.Raise(f"Cannot get the console of instance {inst.name}")
        console = result.payload[inst.name]
        objects.InstanceConsole.FromDict(console)
        return console


class LUInstanceReinstall(iu.InstanceLU):
    """Reinstall the OS of a stopped instance, optionally changing it.

    As in Ganeti the instance must be down (admin state "down", not
    running, not offline) and have disks. ``os_type`` (``-o``) must exist on
    the primary node with a supported variant unless ``force_variant``;
    hidden OSes are usable and, as Ganeti does, so are blacklisted ones
    (the blacklist only stops new instances).

    OS parameters: ``osparams`` and ``osparams_private`` update the
    instance's saved ones (a value of "default" removes a key, so the
    cluster's per-OS default applies again) and are saved with the new OS
    once the create script succeeded: they are permanent, like in Ganeti
    2.16 where ``-O`` replaces the saved parameters; unlike it, parameters
    not named are kept rather than dropped. ``osparams_secret`` is used for
    this run only and never saved. A failing OS script leaves the
    configuration (OS and parameters) unchanged and its error quotes the
    script's log.
    """

    HPATH = "instance-reinstall"

    def CheckPrereq(self) -> None:
        """Down, not offline, has disks, node online; OS and parameters valid."""
        super().CheckPrereq()
        inst, op, cfg = self.instance, self.op, self.cfg
        iu.CheckNodeOnline(cfg, inst.primary_node,
                           "Instance primary node offline, cannot reinstall")
        if not cfg.GetInstanceDisks(inst.uuid):
            raise errors.OpPrereqError(f"Instance '{inst.name}' has no disks",
                                       errors.ECODE_INVAL)
        iu.CheckInstanceState(self, inst, iu.INSTANCE_DOWN, "cannot reinstall")
        self.os_name = op.os_type or inst.os
        if not self.os_name:
            raise errors.OpPrereqError(
                f"Instance '{inst.name}' has no OS; give one with -o/--os-type",
                errors.ECODE_INVAL)
        self.new_osparams = MergeParams(inst.osparams, op.osparams or {})
        self.new_osparams_private = MergeParams(inst.osparams_private,
                                                op.osparams_private or {})
        self.osparams_secret = dict(op.osparams_secret or {})
        cluster = cfg.GetClusterInfo()
        self.filled_osparams = cluster.SimpleFillOS(
            self.os_name, self.new_osparams, self.new_osparams_private)
        self.filled_osparams.update(self.osparams_secret)
        for node_uuid in cfg.GetInstanceNodes(inst.uuid):
            result = self.rpc.call_os_validate(
                [node_uuid], True, self.os_name, [constants.OS_VALIDATE_PARAMETERS],
                self.filled_osparams, op.force_variant)[node_uuid]
            result.Raise(f"OS '{self.os_name}' not usable on node"
                         f" {iu.NodeName(cfg, node_uuid)}", prereq=True,
                         ecode=errors.ECODE_INVAL)

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Disks up, OS create script (reinstall), disks down, then save the
        OS and its parameters."""
        inst, op, cfg = self.instance, self.op, self.cfg
        if op.os_type is not None and op.os_type != inst.os:
            feedback_fn(f"Changing OS scripts to '{op.os_type}'...")
        # The script runs with the new OS and parameters; the configuration
        # gets them only once it succeeded
        target = inst.Copy()
        target.os = self.os_name
        target.osparams = self.new_osparams
        target.osparams_private = self.new_osparams_private
        inst_dict = iu.InstanceRpcDict(cfg, target)
        inst_dict["osparams"] = dict(self.filled_osparams)
        # Assembled for the script only: disks_active stays as it is
        disks = cfg.GetInstanceDisks(inst.uuid)
        iu.AssembleDisks(self, inst, disks=disks)
        try:
            feedback_fn("Running the instance OS create scripts...")
            result = self.rpc.call_instance_os_add(
                inst.primary_node, inst_dict, True, getattr(op, "debug_level", 0) or 0)
            result.Raise(f"Could not install OS for instance '{inst.name}' on node"
                         f" '{iu.NodeName(cfg, inst.primary_node)}'")
        finally:
            iu.ShutdownDisks(self, inst, disks=disks)
        current = cfg.GetInstanceInfo(inst.uuid)
        if (current.os, current.osparams, current.osparams_private) != \
                (target.os, target.osparams, target.osparams_private):
            current.os = target.os
            current.osparams = target.osparams
            current.osparams_private = target.osparams_private
            cfg.Update(current, feedback_fn)
