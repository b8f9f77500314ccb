"""The cluster configuration: loading, querying, changing and saving it.

``ganeti.config.ConfigWriter`` is the master's handle on config.data; see
:mod:`ganeti.config.writer` for the copy-and-Update design. The package is
split by concern: file handling and locking (base), lookups, allocation of
unique resources (allocation, reservations), changes (writer), consistency
checks (verify) and ssconf values (ssconf_values).
"""

from ganeti.config.base import InitConfig, LoadConfigData, SplitVersion
from ganeti.config.reservations import (
    IpReservationManager, TemporaryReservationManager,
)
from ganeti.config.ssconf_values import ComputeSsconfValues, FormatUidPool
from ganeti.config.verify import ComputeDRBDMap, VerifyConfigData
from ganeti.config.writer import ConfigWriter

__all__ = [
    "ConfigWriter", "InitConfig", "LoadConfigData", "SplitVersion",
    "TemporaryReservationManager", "IpReservationManager",
    "ComputeSsconfValues", "FormatUidPool", "VerifyConfigData",
    "ComputeDRBDMap",
]
