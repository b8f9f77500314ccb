"""Settings for every test suite."""

import os

from ganeti.config import serialize

# Every configuration save also checks the cached serialisation against a
# fresh one (ganeti.config.serialize); the daemons the tests start inherit it
os.environ.setdefault(serialize.CHECK_ENV, "1")
