"""Basics shared by the CLI modules: printing and the luxi client.

Printing goes through :func:`ToStdout` and :func:`ToStderr`, which look up
``sys.stdout``/``sys.stderr`` at call time (so tests can capture them) and
format like Ganeti's: ``ToStdout("Job %s", 12)``.
"""

from __future__ import annotations

import sys
import textwrap
from typing import Any, TextIO


class JobSubmittedException(Exception):
    """A job was submitted with ``--submit``; the argument is its ID.

    Raised to end the command: :func:`ganeti.cli.command.FormatError` turns it
    into "JobID: N" and exit code 0, as Ganeti does.
    """


class NoMasterError(Exception):
    """The master daemon's socket cannot be reached (refused or missing).

    Stands in for the luxi client's own error class when the connection
    fails below it (e.g. a plain ``ConnectionRefusedError``).
    """


def _Write(stream: TextIO, txt: str, args: tuple[Any, ...]) -> None:
    if args:
        txt = txt % args
    stream.write(txt)
    stream.write("\n")
    stream.flush()


def ToStdout(txt: str, *args: Any) -> None:
    """Print a line to standard output (``txt % args`` when args are given)."""
    _Write(sys.stdout, txt, args)


def ToStderr(txt: str, *args: Any) -> None:
    """Print a line to standard error (``txt % args`` when args are given)."""
    _Write(sys.stderr, txt, args)


def GetClient(address: str | None = None) -> Any:
    """Return a luxi client for the master daemon (at ``address`` if given)."""
    from ganeti import luxi  # late: only commands that talk to the master need it
    return luxi.Client(address=address)


def AskUser(text: str, choices: list[tuple[str, Any, str]] | None = None) -> Any:
    """Ask a question on the terminal; return the value of the chosen answer.

    ``choices`` are ``(key, value, description)``; the default is yes (True)
    / no (False). Without a terminal (``/dev/tty`` cannot be opened) the
    last choice's value is returned, so scripts never confirm by accident.
    """
    if choices is None:
        choices = [("y", True, "Perform the operation"),
                   ("n", False, "Do not perform the operation")]
    if not choices or any(len(entry) != 3 or entry[0] == "?" for entry in choices):
        raise ValueError(f"Invalid choices for AskUser: {choices!r}")
    answer = choices[-1][1]
    text = "\n".join(textwrap.fill(line, 70, replace_whitespace=False)
                     for line in text.splitlines())
    try:
        tty = open("/dev/tty", "r+", encoding="utf-8")  # noqa: SIM115
    except OSError:
        return answer
    with tty:
        keys = [entry[0] for entry in choices]
        keys[-1] = f"[{keys[-1]}]"
        prompt = "/".join(keys + ["?"])
        mapping = {entry[0]: entry[1] for entry in choices}
        while True:
            tty.write(f"{text}\n{prompt}: ")
            tty.flush()
            line = tty.readline()
            if not line:
                return answer
            line = line.strip().lower()
            if not line:
                return answer
            if line in mapping:
                return mapping[line]
            if line == "?":
                for key, _, description in choices:
                    tty.write(f" {key} - {description}\n")
                tty.write("\n")
