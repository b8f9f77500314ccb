"""Helpers for tests of the OS API: install OS definitions on a node root."""

from __future__ import annotations

import os
import shutil

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
NOOP_OS = os.path.join(REPO_ROOT, "os-definitions", "noop")


def OsDir(root: str) -> str:
    """The node's OS search directory (created)."""
    path = os.path.join(root, "srv", "ganeti", "os")
    os.makedirs(path, exist_ok=True)
    return path


def InstallNoop(root: str, name: str = "noop") -> str:
    """Copy the shipped noop OS into the node's OS search path."""
    dst = os.path.join(OsDir(root), name)
    shutil.copytree(NOOP_OS, dst)
    return dst


def MakeOs(root: str, name: str, scripts: dict[str, str] | None = None,
           api: str = "20\n", variants: str | None = "default\n",
           parameters: str | None = "", mode: int = 0o755) -> str:
    """Write a small OS definition; ``scripts`` maps script name -> body."""
    path = os.path.join(OsDir(root), name)
    os.makedirs(path)
    bodies = {name: "#!/bin/sh\nexit 0\n"
              for name in ("create", "import", "export", "rename", "verify")}
    bodies.update(scripts or {})
    for script, body in bodies.items():
        if body is None:
            continue
        with open(os.path.join(path, script), "w", encoding="utf-8") as fd:
            fd.write(body)
        os.chmod(os.path.join(path, script), mode)
    if api is not None:
        with open(os.path.join(path, "ganeti_api_version"), "w", encoding="ascii") as fd:
            fd.write(api)
    if variants is not None:
        with open(os.path.join(path, "variants.list"), "w", encoding="ascii") as fd:
            fd.write(variants)
    if parameters is not None:
        with open(os.path.join(path, "parameters.list"), "w", encoding="ascii") as fd:
            fd.write(parameters)
    return path
