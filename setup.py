"""Install the ganeti package (from lib/), the gnt-* scripts and the daemons."""

import glob
import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _version() -> str:
    with open(os.path.join(HERE, "lib", "__init__.py"), encoding="utf-8") as fd:
        match = re.search(r'^__version__ = "([^"]+)"', fd.read(), re.M)
    assert match, "lib/__init__.py has no __version__"
    return match.group(1)


def _executables(directory: str) -> list[str]:
    return sorted(path for path in glob.glob(os.path.join(directory, "*"))
                  if os.path.isfile(path) and os.access(path, os.X_OK))


def _requirements() -> list[str]:
    with open(os.path.join(HERE, "requirements.txt"), encoding="utf-8") as fd:
        return [line.strip() for line in fd
                if line.strip() and not line.startswith("#")]


setup(
    name="ganeti",
    version=_version(),
    description="Cluster virtualization manager in the style of Ganeti",
    python_requires=">=3.11",
    package_dir={"ganeti": "lib"},
    packages=["ganeti"] + ["ganeti." + pkg for pkg in find_packages("lib")],
    scripts=_executables("daemons") + _executables("scripts"),
    install_requires=_requirements(),
)
