"""ensure-dirs: the owner, group and mode of everything the daemons use.

:func:`Table` lists every directory, file and socket the daemons need,
with the mode and the owner and group each must have (as roles of
:mod:`ganeti.runtime`: ``masterd``, ``confd``, ``rapi``, ``noded``, and the
groups ``daemons`` and ``admin``). The tool, daemon-util (before starting
a daemon) and cluster verify (node side, ``constants.NV_FILEPERMS``) share
it:

- :func:`Check` reports each difference without changing anything;
- :func:`Ensure` creates the missing directories and fixes the rest.

Files are never created: a file missing is left missing (its writer makes
it). With ``full_run`` every file of the job queue and of its archive is
covered too; without it the queue is not walked, so a run costs a few dozen
``lstat`` calls (daemon-util runs it at every daemon start).

Symbolic links are never followed: a path that is a link (or of another
type) where a file or directory is expected is reported and left alone,
and fixes go through a descriptor opened with ``O_PATH | O_NOFOLLOW`` whose
inode is checked first, so a path swapped for a link in the meantime is not
fixed through it.

In a virtual cluster (:func:`ganeti.runtime.Mode`) every daemon runs as the
invoking user: only modes are checked and set, ownership is neither
reported nor changed.
"""

from __future__ import annotations

import argparse
import dataclasses
import grp
import logging
import os
import pwd
import stat
import sys
from collections.abc import Callable, Iterator

from ganeti import constants, errors, pathutils, runtime, ssconf

#: Kinds of table entries
DIR = "directory"
FILE = "file"
SOCKET = "socket"

#: Modes of the job queue's contents (``full_run``)
QUEUE_FILE_MODE = constants.JOB_QUEUE_FILES_PERMS
QUEUE_DIR_MODE = 0o700


@dataclasses.dataclass(frozen=True)
class Entry:
    """One path of the table.

    ``owner`` names a daemon user (``masterd``, ``confd``, ``rapi``,
    ``noded``), ``group`` a daemon group (those, ``daemons`` or ``admin``).
    ``create``: a directory made when missing; any other entry missing is
    left alone.
    """

    path: str
    kind: str
    mode: int
    owner: str
    group: str
    create: bool = False


def Table() -> list[Entry]:
    """Every path the daemons need, in the order they are fixed (a directory
    before what it holds). Paths are read from ``pathutils`` at the call."""
    p = pathutils
    rows = [
        # path, kind, mode, owner, group, create
        (p.DATA_DIR, DIR, 0o755, "masterd", "masterd", True),
        # The master daemon writes it; confd (by its group) only reads it
        (p.CLUSTER_CONF_FILE, FILE, 0o640, "masterd", "confd", False),
        (p.NODED_CERT_FILE, FILE, 0o440, "masterd", "masterd", False),
        (p.NODED_CLIENT_CERT_FILE, FILE, 0o440, "masterd", "masterd", False),
        # Each daemon owns the key it serves with; the master daemon reads
        # (by its group) what it redistributes to the nodes
        (p.RAPI_CERT_FILE, FILE, 0o440, "rapi", "masterd", False),
        (p.CONFD_HMAC_KEY, FILE, 0o440, "confd", "masterd", False),
        (p.CLUSTER_DOMAIN_SECRET_FILE, FILE, 0o640, "masterd", "masterd", False),
        (p.SPICE_CERT_FILE, FILE, 0o440, "masterd", "masterd", False),
        (p.SPICE_CACERT_FILE, FILE, 0o440, "masterd", "masterd", False),
        (p.RAPI_DATA_DIR, DIR, 0o750, "rapi", "masterd", True),
        (p.RAPI_USERS_FILE, FILE, 0o640, "rapi", "masterd", False),
    ]
    rows += [(path, FILE, constants.SS_FILE_PERMS, "masterd", "masterd", False)
             for path in ssconf.SimpleStore().GetFileList()]
    rows += [
        (p.QUEUE_DIR, DIR, QUEUE_DIR_MODE, "masterd", "masterd", True),
        (p.JOB_QUEUE_ARCHIVE_DIR, DIR, QUEUE_DIR_MODE, "masterd", "masterd", True),
        # Every daemon writes its pid file here
        (p.RUN_DIR, DIR, 0o775, "masterd", "daemons", True),
        # Members of the admin group may talk to the master daemon
        (p.SOCKET_DIR, DIR, 0o750, "masterd", "admin", True),
        (p.MASTER_SOCKET, SOCKET, constants.LUXI_SOCKET_PERMS, "masterd", "admin", False),
        (p.QUERY_SOCKET, SOCKET, constants.LUXI_SOCKET_PERMS, "masterd", "admin", False),
        # Every daemon creates its log file here
        (p.LOG_DIR, DIR, 0o770, "masterd", "daemons", True),
    ]
    for daemon, role in ((constants.MASTERD, "masterd"), (constants.CONFD, "confd"),
                         (constants.RAPI, "rapi"), (constants.NODED, "noded")):
        rows.append((p.DAEMONS_LOGFILES[daemon], FILE, 0o600, role, role, False))
    rows += [
        (p.LOG_OS_DIR, DIR, 0o750, "noded", "noded", False),
        # Taken by whoever writes ssconf files: the node daemon, and the
        # master daemon (by its group)
        (p.SSCONF_LOCK_FILE, FILE, 0o660, "noded", "masterd", False),
        (p.CONF_DIR, DIR, 0o755, "noded", "noded", False),
        # Hooks run as root: nobody else may put scripts there
        (p.HOOKS_BASE_DIR, DIR, 0o755, "noded", "noded", False),
    ]
    return [Entry(*row) for row in rows]


def _QueueEntries(listing: Callable[[str], list[tuple[str, bool]]]) -> Iterator[Entry]:
    """The job queue's contents (``full_run``): every file of the queue
    directory, each directory of the archive and the files in it."""
    queue, archive = pathutils.QUEUE_DIR, pathutils.JOB_QUEUE_ARCHIVE_DIR
    for path, _ in listing(queue):
        if path != archive:
            yield Entry(path, FILE, QUEUE_FILE_MODE, "masterd", "masterd")
    for path, is_dir in listing(archive):
        if not is_dir:
            yield Entry(path, FILE, QUEUE_FILE_MODE, "masterd", "masterd")
            continue
        yield Entry(path, DIR, QUEUE_DIR_MODE, "masterd", "masterd")
        for inner, _ in listing(path):
            yield Entry(inner, FILE, QUEUE_FILE_MODE, "masterd", "masterd")


@dataclasses.dataclass(frozen=True)
class Difference:
    """A path that is not as the table says (or could not be fixed)."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclasses.dataclass
class Result:
    """What :func:`Ensure` did: one line per fix, and what it could not fix."""

    fixes: list[str] = dataclasses.field(default_factory=list)
    failures: list[Difference] = dataclasses.field(default_factory=list)


def _UserName(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _GroupName(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


@dataclasses.dataclass(frozen=True)
class _Owners:
    """The expected ids and names of the roles (not in a virtual cluster)."""

    ents: runtime.Ents
    names: runtime.Names

    def Ids(self, entry: Entry) -> tuple[int, int]:
        return (getattr(self.ents, f"{entry.owner}_uid"),
                getattr(self.ents, f"{entry.group}_gid"))

    def Label(self, entry: Entry) -> str:
        return (f"{getattr(self.names, f'{entry.owner}_user')}:"
                f"{getattr(self.names, f'{entry.group}_group')}")


def _GetOwners() -> _Owners | None:
    """None in a virtual cluster (ownership is not ours to check).

    @raise errors.ConfigurationError: the daemon users or groups are missing
    """
    if runtime.Mode() == runtime.MODE_VIRTUAL:
        return None
    return _Owners(runtime.GetEnts(), runtime.GetNames())


_TYPE_NAMES = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
               (stat.S_ISREG, "a file"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISFIFO, "a fifo"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"))
_KIND_TEST = {DIR: stat.S_ISDIR, FILE: stat.S_ISREG, SOCKET: stat.S_ISSOCK}


def _TypeProblem(st: os.stat_result, kind: str) -> str | None:
    if _KIND_TEST[kind](st.st_mode):
        return None
    what = next((name for test, name in _TYPE_NAMES if test(st.st_mode)),
                "of an unknown type")
    return f"is {what}, expected a {kind}; not touched"


class _Walker:
    """Checks (and with ``fix``, fixes) entries, collecting the outcome."""

    def __init__(self, fix: bool, owners: _Owners | None) -> None:
        self.fix = fix
        self.owners = owners
        self.result = Result()
        # Directories refused (links, wrong types): nothing below them is
        # looked at, since reaching it would go through them
        self._refused: list[str] = []

    def _Fail(self, path: str, problem: str) -> None:
        logging.debug("%s: %s", path, problem)
        self.result.failures.append(Difference(path, problem))

    def List(self, directory: str) -> list[tuple[str, bool]]:
        """(path, is a directory) of each entry of ``directory``, sorted;
        links are not followed. Empty (and reported) when unreadable."""
        try:
            with os.scandir(directory) as it:
                found = [(item.path, item.is_dir(follow_symlinks=False)) for item in it]
        except FileNotFoundError:
            return []
        except OSError as err:
            self._Fail(directory, f"cannot list: {err.strerror}")
            return []
        return sorted(found)

    def Process(self, entry: Entry) -> None:
        """Check ``entry``; fix it when fixing."""
        path = entry.path
        if any(path.startswith(refused + "/") for refused in self._refused):
            logging.debug("%s: below a refused directory, not looked at", path)
            return
        created = False
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            if not entry.create:
                logging.debug("%s: absent (optional)", path)
                return
            if not self.fix:
                self._Fail(path, "missing")
                return
            if not self._MakeDir(path):
                return
            created = True
            try:
                st = os.lstat(path)
            except OSError as err:
                self._Fail(path, f"cannot inspect: {err.strerror}")
                return
        except OSError as err:
            self._Fail(path, f"cannot inspect: {err.strerror}")
            return
        problem = _TypeProblem(st, entry.kind)
        if problem:
            self._Fail(path, problem)
            if entry.kind == DIR:
                self._refused.append(path)
            return
        wrong = self._Compare(entry, st)
        if wrong and not self.fix:
            for what, have, want in wrong:
                self._Fail(path, f"{what} {have}, expected {want}")
            return
        if wrong and not self._Fix(entry, st, wrong):
            return
        if created:
            owner = f", owner {self.owners.Label(entry)}" if self.owners else ""
            self.result.fixes.append(f"{path}: created with mode {entry.mode:04o}{owner}")
        elif wrong:
            self.result.fixes.extend(f"{path}: {what} {have} changed to {want}"
                                     for what, have, want in wrong)
        else:
            logging.debug("%s: ok", path)

    def _Compare(self, entry: Entry, st: os.stat_result) -> list[tuple[str, str, str]]:
        """(what, have, want) for each difference of ``st`` from ``entry``."""
        wrong = []
        mode = stat.S_IMODE(st.st_mode)
        if mode != entry.mode:
            wrong.append(("mode", f"{mode:04o}", f"{entry.mode:04o}"))
        if self.owners is not None and (st.st_uid, st.st_gid) != self.owners.Ids(entry):
            wrong.append(("owner", f"{_UserName(st.st_uid)}:{_GroupName(st.st_gid)}",
                          self.owners.Label(entry)))
        return wrong

    def _MakeDir(self, path: str) -> bool:
        try:
            # Parents (in a fresh node root) get the usual 0755
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            # Nobody else's until its mode and owner are set
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as err:
            self._Fail(path, f"cannot create directory: {err.strerror}")
            return False
        return True

    def _Fix(self, entry: Entry, st: os.stat_result,
             wrong: list[tuple[str, str, str]]) -> bool:
        """Set the owner and mode through a descriptor of the very inode
        inspected (``/proc/self/fd`` reaches it without following links)."""
        path = entry.path
        try:
            fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as err:
            self._Fail(path, f"cannot open: {err.strerror}")
            return False
        try:
            fst = os.fstat(fd)
            if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino) \
                    or _TypeProblem(fst, entry.kind):
                self._Fail(path, "changed while being fixed; not touched")
                return False
            handle = f"/proc/self/fd/{fd}"
            if self.owners is not None and any(what == "owner" for what, _, _ in wrong):
                uid, gid = self.owners.Ids(entry)
                os.chown(handle, uid, gid)
            # Always after chown, which may clear set-id bits
            os.chmod(handle, entry.mode)
        except OSError as err:
            self._Fail(path, f"cannot set {' and '.join(w for w, _, _ in wrong)}:"
                             f" {err.strerror}")
            return False
        finally:
            os.close(fd)
        return True


def _Run(fix: bool, full_run: bool) -> Result:
    walker = _Walker(fix, _GetOwners())
    for entry in Table():
        walker.Process(entry)
    if full_run:
        for entry in _QueueEntries(walker.List):
            walker.Process(entry)
    return walker.result


def Check(full_run: bool = False) -> list[Difference]:
    """Every difference from the table; changes nothing.

    @raise errors.ConfigurationError: the daemon users or groups are missing
    """
    return _Run(False, full_run).failures


def Ensure(full_run: bool = False) -> Result:
    """Create the missing directories and fix owners and modes.

    @raise errors.ConfigurationError: the daemon users or groups are missing
    """
    return _Run(True, full_run)


def BuildParser() -> argparse.ArgumentParser:
    """The command line of ensure-dirs."""
    parser = argparse.ArgumentParser(
        prog="ensure-dirs",
        description="Create the directories and fix the owners and modes of the"
                    " files the Ganeti daemons use")
    parser.add_argument("--full-run", action="store_true",
                        help="Also fix every file of the job queue and its archive")
    parser.add_argument("--dry-run", "--check", dest="dry_run", action="store_true",
                        help="Change nothing: list every difference, exit 1 if any")
    parser.add_argument("-d", "--debug", action="store_true",
                        help="Say what is checked, on stderr")
    return parser


def Main(argv: list[str] | None = None) -> int:
    """Run ensure-dirs; return its exit code."""
    options = BuildParser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, format="ensure-dirs: %(message)s",
                        level=logging.DEBUG if options.debug else logging.WARNING)
    try:
        if options.dry_run:
            differences = Check(options.full_run)
            for difference in differences:
                print(difference)
            return constants.EXIT_FAILURE if differences else constants.EXIT_SUCCESS
        result = Ensure(options.full_run)
    except errors.GenericError as err:
        print(f"ensure-dirs: {err}", file=sys.stderr)
        return constants.EXIT_FAILURE
    for line in result.fixes:
        print(line)
    for failure in result.failures:
        print(f"ensure-dirs: {failure}", file=sys.stderr)
    return constants.EXIT_FAILURE if result.failures else constants.EXIT_SUCCESS
