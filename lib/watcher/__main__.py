"""``python -m ganeti.watcher``: how the watcher starts its group children."""

import sys

from ganeti.watcher import Main

sys.exit(Main())
