"""Tags: list, add, remove and search the tags of cluster objects.

Kinds (``constants.TAG_*``): the cluster (no name), a node, a node group,
an instance or a network, named as users type them (node and instance
names may be abbreviated). Tags are checked by
``objects.TaggableObject.ValidateTag`` (length ``MAX_TAG_LEN``, allowed
characters) and an object holds at most ``MAX_TAGS_PER_OBJ`` tags. The
object's lock is taken (shared for reading), as Ganeti does; cluster tags
need only the Big Ganeti Lock.
"""

from __future__ import annotations

import re
from typing import Any

from ganeti import constants, errors, locking, objects, utils
from ganeti.cmdlib.base import FeedbackFn, NoHooksLU


def _Unknown(kind: str, name: Any) -> errors.OpPrereqError:
    return errors.OpPrereqError(f"{kind} '{name}' not known", errors.ECODE_NOENT)


class TagsLU(NoHooksLU):
    """Common part of the tag LUs: find the object and lock it.

    Sets ``self.target`` (a copy of the object, to change and store with
    ``cfg.Update``) in ``CheckPrereq``.
    """

    REQ_BGL = False
    cfg: Any
    target: Any

    def ExpandNames(self) -> None:
        self.needed_locks = {}
        kind, name = self.op.kind, self.op.name
        cfg = self.cfg
        if kind == constants.TAG_CLUSTER:
            return
        if not name:
            raise errors.OpPrereqError(f"Tags of a {kind} need the {kind}'s name",
                                       errors.ECODE_INVAL)
        if kind == constants.TAG_NODE:
            full = cfg.ExpandNodeName(name)
            node = cfg.GetNodeInfoByName(full) if full else None
            if node is None:
                raise _Unknown("Node", name)
            self.op.name = node.name
            self.obj_uuid = node.uuid
            self.needed_locks[locking.LEVEL_NODE] = [node.uuid]
        elif kind == constants.TAG_INSTANCE:
            full = cfg.ExpandInstanceName(name)
            inst = cfg.GetInstanceInfoByName(full) if full else None
            if inst is None:
                raise _Unknown("Instance", name)
            self.op.name = inst.name
            self.obj_uuid = inst.uuid
            self.needed_locks[locking.LEVEL_INSTANCE] = [inst.name]
        elif kind == constants.TAG_NODEGROUP:
            self.obj_uuid = cfg.LookupNodeGroup(name)
            self.needed_locks[locking.LEVEL_NODEGROUP] = [self.obj_uuid]
        elif kind == constants.TAG_NETWORK:
            self.obj_uuid = cfg.LookupNetwork(name)
            self.needed_locks[locking.LEVEL_NETWORK] = [self.obj_uuid]
        else:
            raise errors.OpPrereqError(f"Wrong tag type requested ({kind})",
                                       errors.ECODE_INVAL)

    def CheckPrereq(self) -> None:
        kind = self.op.kind
        cfg = self.cfg
        target: Any
        if kind == constants.TAG_CLUSTER:
            target = cfg.GetClusterInfo()
        elif kind == constants.TAG_NODE:
            target = cfg.GetNodeInfo(self.obj_uuid)
        elif kind == constants.TAG_INSTANCE:
            target = cfg.GetInstanceInfo(self.obj_uuid)
        elif kind == constants.TAG_NODEGROUP:
            target = cfg.GetNodeGroup(self.obj_uuid)
        else:
            target = cfg.GetNetwork(self.obj_uuid)
        if target is None:
            # Removed between ExpandNames and the locks
            raise _Unknown(kind.capitalize(), self.op.name)
        self.target = target

    def _CheckTags(self) -> list[str]:
        """The opcode's tags, validated (TagError names the bad one)."""
        for tag in self.op.tags:
            objects.TaggableObject.ValidateTag(tag)
        return list(dict.fromkeys(self.op.tags))


class LUTagsGet(TagsLU):
    """Return the tags of an object, sorted."""

    def ExpandNames(self) -> None:
        super().ExpandNames()
        # Reading only
        self.share_locks = dict.fromkeys(locking.LEVELS, 1)

    def Exec(self, feedback_fn: FeedbackFn) -> list[str]:
        return sorted(self.target.GetTags())


class LUTagsSet(TagsLU):
    """Add tags to an object."""

    def CheckPrereq(self) -> None:
        super().CheckPrereq()
        self.new_tags = self._CheckTags()
        total = len(self.target.GetTags() | set(self.new_tags))
        if total > constants.MAX_TAGS_PER_OBJ:
            what = f"{self.op.kind} {self.op.name}" if self.op.name else self.op.kind
            raise errors.TagError(
                f"Too many tags: {what} would have {total} tags (at most"
                f" {constants.MAX_TAGS_PER_OBJ})")

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        try:
            for tag in self.new_tags:
                self.target.AddTag(tag)
        except errors.TagError as err:
            raise errors.OpExecError(f"Error while setting tag: {err}") from err
        self.cfg.Update(self.target, feedback_fn)


class LUTagsDel(TagsLU):
    """Remove tags from an object; every tag must be there."""

    def CheckPrereq(self) -> None:
        super().CheckPrereq()
        self.del_tags = self._CheckTags()
        missing = sorted(set(self.del_tags) - self.target.GetTags())
        if missing:
            names = utils.CommaJoin(f"'{tag}'" for tag in missing)
            raise errors.OpPrereqError(f"Tag(s) {names} not found", errors.ECODE_NOENT)

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        for tag in self.del_tags:
            self.target.RemoveTag(tag)
        self.cfg.Update(self.target, feedback_fn)


class LUTagsSearch(NoHooksLU):
    """Find the tags matching a regular expression: [(path, tag), ...].

    Paths are Ganeti's: ``/cluster``, ``/instances/<name>``,
    ``/nodes/<name>``, ``/nodegroup/<name>`` and (ours) ``/networks/<name>``.
    """

    REQ_BGL = False
    cfg: Any

    def ExpandNames(self) -> None:
        self.needed_locks = {}

    def CheckPrereq(self) -> None:
        try:
            self.re = re.compile(self.op.pattern)
        except re.error as err:
            raise errors.OpPrereqError(
                f"Invalid search pattern '{self.op.pattern}': {err}",
                errors.ECODE_INVAL) from err

    def Exec(self, feedback_fn: FeedbackFn) -> list[tuple[str, str]]:
        snap = self.cfg.GetReadOnlySnapshot()
        targets: list[tuple[str, Any]] = [("/cluster", snap.cluster)]
        for prefix, objs in (("/instances", snap.instances), ("/nodes", snap.nodes),
                             ("/nodegroup", snap.nodegroups),
                             ("/networks", snap.networks)):
            for obj in utils.NiceSort(objs.values(), key=lambda o: o.name):
                targets.append((f"{prefix}/{obj.name}", obj))
        results = []
        for path, target in targets:
            for tag in sorted(target.tags or ()):
                if self.re.search(tag):
                    results.append((path, tag))
        return results
