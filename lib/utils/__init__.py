"""Utility functions, re-exported flat so that callers write ``utils.RunCmd``.

Each submodule holds one concern and lists its public names in ``__all__``;
everything listed there is available here:

- :mod:`.algo`: sequences, dicts, natural sorting, running timeouts
- :mod:`.filelock`: flock-based file locks
- :mod:`.io`: atomic file writes, reading, directories, path checks
- :mod:`.misc`: UUIDs, mounts
- :mod:`.net`: IP addresses, host names, TCP ping
- :mod:`.process`: running commands, pid files, killing processes
- :mod:`.retry`: retrying with timeouts and back-off
- :mod:`.security`: HMAC signatures and salts
- :mod:`.text`: sizes, names, MAC addresses, shell quoting

Submodules without ``__all__`` re-exported here are imported by name:
:mod:`.x509` (certificates; it pulls in the ``cryptography`` package, which
most importers do not need) and :mod:`.mlock`.
"""

# The star imports are the point of this module: each submodule's __all__
# defines exactly what it adds here.
from ganeti.utils.algo import *  # noqa: F403
from ganeti.utils.filelock import *  # noqa: F403
from ganeti.utils.io import *  # noqa: F403
from ganeti.utils.misc import *  # noqa: F403
from ganeti.utils.net import *  # noqa: F403
from ganeti.utils.process import *  # noqa: F403
from ganeti.utils.retry import *  # noqa: F403
from ganeti.utils.security import *  # noqa: F403
from ganeti.utils.text import *  # noqa: F403
