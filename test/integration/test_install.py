"""Installing the package (``pip install .``, what ``make install`` runs):
the install-time user and group prefixes, the installed tools and daemons.

The package is installed with pip into a fresh virtualenv whose
dependencies come from this checkout's (a path line, so that the
checkout's own editable ``ganeti`` stays out of sight), with
``GANETI_BUILD_USER_PREFIX``/``GANETI_BUILD_GROUP_PREFIX`` set as ``make
install USER_PREFIX=... GROUP_PREFIX=...`` sets them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _Source(base: Path) -> Path:
    """A copy of the checkout's sources (pip builds in the source tree)."""
    source = base / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "__pycache__", "*.egg-info", ".*_cache",
        ".hypothesis"))
    return source


def _Install(target: Path, env: dict[str, str]) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)],
                   check=True, capture_output=True)
    (site,) = target.glob("lib/python*/site-packages")
    deps = sorted({sysconfig.get_paths()[key] for key in ("purelib", "platlib")})
    (site / "checkout-deps.pth").write_text("".join(f"{d}\n" for d in deps))
    python = target / "bin" / "python"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-build-isolation", "--no-cache-dir",
         str(_Source(target.parent))],
        env={**os.environ, **env}, capture_output=True, text=True, cwd=str(target))
    assert result.returncode == 0, result.stdout + result.stderr
    return python


def _Run(python: Path, code: str, env: dict[str, str] | None = None) -> str:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("GANETI_") and k != "PYTHONPATH"}
    result = subprocess.run([str(python), "-c", code], env={**clean, **(env or {})},
                            capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_install_time_prefixes(tmp_path):
    python = _Install(tmp_path / "venv", {"GANETI_BUILD_USER_PREFIX": "zu-",
                                          "GANETI_BUILD_GROUP_PREFIX": "zg-"})
    where = _Run(python, "import ganeti; print(ganeti.__file__)")
    assert where.startswith(str(tmp_path)), where
    names = _Run(python, "from ganeti import runtime; n = runtime.GetNames();"
                         " print(n.masterd_user, n.rapi_group, n.admin_group)")
    assert names == "zu-masterd zg-rapi zg-admin"
    # The run-time variables still override (tests use them)
    assert _Run(python, "from ganeti import runtime;"
                        " print(runtime.GetNames().confd_user)",
                {"GANETI_USER_PREFIX": "x-"}) == "x-confd"
    bindir = tmp_path / "venv" / "bin"
    for tool in ("ensure-dirs", "ensure-users", "daemon-util", "ganeti-masterd",
                 "ganeti-noded", "ganeti-confd", "ganeti-rapi", "gnt-cluster",
                 "gnt-instance"):
        assert os.access(bindir / tool, os.X_OK), tool
    # daemon-util finds the installed launchers
    assert _Run(python, "from ganeti import daemon_util;"
                        " print(daemon_util.DaemonsDir())") == str(bindir)
    # ensure-users of this install names its own users
    result = subprocess.run([str(bindir / "ensure-users"), "--dry-run"],
                            capture_output=True, text=True, check=False,
                            env={k: v for k, v in os.environ.items()
                                 if not k.startswith("GANETI_") and k != "PYTHONPATH"})
    assert result.returncode == 0, result.stderr
    assert "zu-masterd" in result.stdout and "zg-admin" in result.stdout


def test_install_without_separation(tmp_path):
    python = _Install(tmp_path / "venv", {"GANETI_BUILD_USER_PREFIX": "root"})
    assert _Run(python, "from ganeti import runtime; print(runtime.Mode(),"
                        " runtime.GetNames().rapi_user)") == "root root"


def test_default_install_separates(tmp_path):
    python = _Install(tmp_path / "venv", {})
    assert _Run(python, "import ganeti, os; print(os.path.exists(os.path.join("
                        "os.path.dirname(ganeti.__file__), '_buildcfg.py')))") == "False"
    assert _Run(python, "from ganeti import runtime; print(runtime.Mode(),"
                        " runtime.GetNames().masterd_user)") == "separate gnt-masterd"
