"""A Python interpreter that users other than the one running the tests can
run, with this checkout's packages.

The checkout's virtualenv interpreter may live where other users cannot go
(a pyenv build under root's 0700 home, as on our CI machines). Tests that
run our code as another user (an unprivileged virtual cluster, daemons that
drop their privileges) then use a virtualenv made from the system's
``python3`` of the same version whose site-packages point at the
checkout's (:func:`PythonForOthers`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

#: Runs an argv as the other user; returns the result, stdout and stderr merged
Runner = Callable[[list[str]], subprocess.CompletedProcess]


def RunAsIds(uid: int, gid: int) -> Runner:
    """A :data:`Runner` for the ids ``uid``/``gid`` (no supplementary groups);
    needs root."""
    def _Switch() -> None:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)

    def _Run(argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(argv, preexec_fn=_Switch, cwd="/", stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=120, check=False)
    return _Run


def Importable(run: Runner, python: str) -> str | None:
    """None if ``python`` run through ``run`` imports ganeti and its
    dependencies, else why not."""
    try:
        result = run([python, "-c", "import ganeti.vcluster, pycurl, bitarray"])
    except OSError as err:
        return str(err)
    return None if result.returncode == 0 else result.stdout.strip()[-500:]


def OverlayVenv(run: Runner, base: str) -> tuple[str | None, str]:
    """A virtualenv in ``base`` (which ``run``'s user must be able to read)
    made from a system python3 of our version, whose site-packages include
    ours; (its python or None, why not)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    site_dirs = sorted({sysconfig.get_paths()[key] for key in ("purelib", "platlib")})
    reasons = []
    for candidate in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        if not os.access(candidate, os.X_OK):
            continue
        venv = os.path.join(base, f"venv-{os.path.basename(os.path.dirname(candidate))}")
        result = subprocess.run([candidate, "-m", "venv", "--without-pip", venv],
                                capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            reasons.append(f"{candidate} -m venv: {result.stderr.strip()}")
            continue
        (site,) = Path(venv).glob("lib/python*/site-packages")
        (site / "gnt-checkout.pth").write_text(
            "import site; " + "; ".join(f"site.addsitedir({d!r})" for d in site_dirs) + "\n")
        python = os.path.join(venv, "bin", "python")
        why = Importable(run, python)
        if why is None:
            return python, ""
        reasons.append(f"{python}: {why}")
    return None, "; ".join(reasons) or f"no system python{version}"


def PythonForOthers(run: Runner, base: str) -> tuple[str | None, str]:
    """This interpreter if ``run``'s user can use it, else an overlay
    virtualenv in ``base``; (python or None, why neither works)."""
    why = Importable(run, sys.executable)
    if why is None:
        return sys.executable, ""
    overlay, reason = OverlayVenv(run, base)
    if overlay is None:
        return None, (f"cannot run {sys.executable} ({why}), nor a system python"
                      f" with this checkout's packages ({reason})")
    return overlay, ""
