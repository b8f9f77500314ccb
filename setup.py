"""Install the ganeti package (from lib/), the gnt-* scripts and the daemons."""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

#: Install-time daemon user/group prefixes (``make install USER_PREFIX=...``),
#: as Ganeti's --with-user-prefix/--with-group-prefix; "root" as the user
#: prefix installs without privilege separation (ganeti.runtime)
#: The tools an installed copy needs (the others serve development)
_INSTALLED_TOOLS = ("cluster-merge", "ensure-dirs", "ensure-users", "kvm-nic-setup",
                    "master-ip-setup", "move-instance")

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


def _BuildDocs() -> None:
    """Build the manual pages and completion scripts unless already built.

    They are generated from the command tables, so ``ganeti`` must import
    with its dependencies, and docutils must be there: true in the
    development virtualenv and in ``make install`` (which builds them
    first), not in pip's isolated build environment, where a bare
    ``pip install .`` then installs only what ``make man completion`` left
    in build/. A failure here never fails the installation.
    """
    jobs = (("man", "ganeti.tools.manpages"),
            ("bash_completion", "ganeti.tools.bash_completion"))
    for subdir, module in jobs:
        outdir = os.path.join(HERE, "build", subdir)
        if os.path.isdir(outdir):
            continue
        with tempfile.TemporaryDirectory() as pylib:
            os.symlink(os.path.join(HERE, "lib"), os.path.join(pylib, "ganeti"))
            env = dict(os.environ, PYTHONPATH=pylib)
            result = subprocess.run([sys.executable, "-m", module, "-q", "--outdir", outdir],
                                    env=env, cwd=HERE, capture_output=True, text=True,
                                    check=False)
        if result.returncode:
            # Not half a directory that would be taken as built next time
            shutil.rmtree(outdir, ignore_errors=True)
            sys.stderr.write(f"warning: {module} failed, not installing build/{subdir}"
                             f" (run 'make man completion' first):\n{result.stderr[-2000:]}\n")


def _BuiltDocs() -> list[tuple[str, list[str]]]:
    """data_files entries for the built manual pages and completion scripts."""
    _BuildDocs()
    entries = []
    for mandir in sorted(glob.glob(os.path.join(HERE, "build", "man", "man[0-9]"))):
        pages = sorted(os.path.relpath(path, HERE)
                       for path in glob.glob(os.path.join(mandir, "*.[0-9]")))
        if pages:
            entries.append((f"share/man/{os.path.basename(mandir)}", pages))
    scripts = sorted(os.path.relpath(path, HERE) for path in
                     glob.glob(os.path.join(HERE, "build", "bash_completion", "*")))
    if scripts:
        entries.append(("share/bash-completion/completions", scripts))
    return entries


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
       for mode in ("bridged", "routed", "openvswitch")]
    # Manual pages and bash completion (make man completion; see _BuildDocs)
    + _BuiltDocs(),
    install_requires=_requirements(),
)
