"""Hypervisors: the abstraction (:mod:`.base`) and the implementations.

:func:`GetHypervisor` returns an instance of the hypervisor named by
Ganeti's hypervisor constant (``constants.HT_*``): ``fake`` and ``kvm``
exist so far. Callers never import an implementation module directly.
"""

from __future__ import annotations

import importlib

from ganeti import constants, errors
from ganeti.hypervisor.base import BaseHypervisor

# Hypervisor name -> "module.Class" below ganeti.hypervisor
_HYPERVISOR_CLASSES = {
    constants.HT_FAKE: "hv_fake.FakeHypervisor",
    constants.HT_KVM: "hv_kvm.KVMHypervisor",
}


def GetHypervisorClass(name: str) -> type[BaseHypervisor]:
    """Return the class of hypervisor ``name``.

    @raise errors.HypervisorError: for an unknown or unimplemented hypervisor
    """
    dotted = _HYPERVISOR_CLASSES.get(name)
    if dotted is None:
        if name in constants.HYPER_TYPES:
            raise errors.HypervisorError(
                f"Hypervisor '{name}' is not implemented on this node (available:"
                f" {', '.join(sorted(_HYPERVISOR_CLASSES))})")
        raise errors.HypervisorError(f"Unknown hypervisor '{name}'")
    module_name, class_name = dotted.split(".")
    module = importlib.import_module(f"ganeti.hypervisor.{module_name}")
    return getattr(module, class_name)


def GetHypervisor(name: str) -> BaseHypervisor:
    """Return an instance of hypervisor ``name`` (see GetHypervisorClass)."""
    return GetHypervisorClass(name)()


def GetAvailableHypervisors() -> list[str]:
    """The names of the hypervisors implemented here."""
    return sorted(_HYPERVISOR_CLASSES)
