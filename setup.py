"""Install the ganeti package (from lib/), the gnt-* scripts and the daemons."""

import glob
import os
import re

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

#: Install-time daemon user/group prefixes (``make install USER_PREFIX=...``),
#: as Ganeti's --with-user-prefix/--with-group-prefix; "root" as the user
#: prefix installs without privilege separation (ganeti.runtime)
#: The tools an installed copy needs (the others serve development)
_INSTALLED_TOOLS = ("cluster-merge", "ensure-dirs", "ensure-users", "kvm-nic-setup",
                    "master-ip-setup")

_PREFIX_ENV = ("GANETI_BUILD_USER_PREFIX", "GANETI_BUILD_GROUP_PREFIX")

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


class BuildPy(build_py):
    """Write ganeti/_buildcfg.py with the install-time settings, if any."""

    def run(self) -> None:
        super().run()
        user, group = (os.environ.get(name) for name in _PREFIX_ENV)
        target = os.path.join(self.build_lib, "ganeti", "_buildcfg.py")
        if user is None and group is None:
            # Not one left in the build directory by an earlier build
            if os.path.exists(target):
                os.unlink(target)
            return
        with open(target, "w", encoding="utf-8") as fd:
            fd.write('"""Settings chosen when this copy was installed."""\n\n')
            if user is not None:
                fd.write(f"USER_PREFIX = {user!r}\n")
            if group is not None:
                fd.write(f"GROUP_PREFIX = {group!r}\n")


setup(
    name="ganeti",
    cmdclass={"build_py": BuildPy},
    version=_version(),
    description="Cluster virtualization manager in the style of Ganeti",
    python_requires=">=3.11",
    package_dir={"ganeti": "lib"},
    packages=["ganeti"] + ["ganeti." + pkg for pkg in find_packages("lib")],
    scripts=(_executables("daemons") + _executables("scripts")
             + [os.path.join("tools", name) for name in _INSTALLED_TOOLS]),
    # Our allocators, first in the iallocator search path of an installed copy
    # (ganeti.pathutils.IallocatorSearchPath)
    # and the built-in NIC scripts (ganeti.hypervisor.netscripts)
    data_files=[("lib/ganeti/iallocators", _executables("iallocators")),
                ("lib/ganeti/network", ["tools/network/net-common"])]
    + [(f"lib/ganeti/network/{mode}", _executables(f"tools/network/{mode}"))
       for mode in ("bridged", "routed", "openvswitch")],
    install_requires=_requirements(),
)
