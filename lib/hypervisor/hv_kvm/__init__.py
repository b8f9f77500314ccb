"""The KVM hypervisor: QEMU processes driven through their command line and QMP.

So far: the parameters (:mod:`.params`: declarations, the master's syntax
checks, the node's validation) and the QEMU command line built from them
(:mod:`.cmdline`, a pure function). :class:`KVMHypervisor` carries the
parameter checks; starting, stopping and migrating instances are still to
come, so the class is not yet registered in :mod:`ganeti.hypervisor`.
"""

from __future__ import annotations

from typing import Any

from ganeti.hypervisor import base
from ganeti.hypervisor.hv_kvm import params


class KVMHypervisor(base.BaseHypervisor):
    """QEMU/KVM instances (parameter checks only, for now)."""

    PARAMETERS = params.PARAMETERS

    @classmethod
    def CheckParameterSyntax(cls, hvparams: dict[str, Any]) -> None:
        """Check each parameter, then those that depend on one another."""
        super().CheckParameterSyntax(hvparams)
        params.CheckCrossParameters(hvparams)

    def ValidateParameters(self, hvparams: dict[str, Any]) -> None:
        """Check files, users, devices and the QEMU binary on this node."""
        super().ValidateParameters(hvparams)
        params.ValidateNodeParameters(hvparams)
