"""ganeti.utils.mlock: what a forked child of a locked process must do.

Run in a separate interpreter: locking the test process's memory (with
MCL_FUTURE) would last for the rest of the session.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

_SCRIPT = textwrap.dedent("""
    import mmap
    import os
    from ganeti.utils import mlock

    def Locked():
        with open("/proc/self/status", encoding="ascii") as fd:
            return int(fd.read().split("VmLck:")[1].split()[0])

    if not mlock.Mlockall():
        print("not-permitted")
        raise SystemExit(0)
    parent = Locked()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        inherited = Locked()
        # MCL_FUTURE would lock a new mapping as it is made
        mem = mmap.mmap(-1, 1 << 20)
        mem.write(b"x" * (1 << 20))
        future = Locked()
        mlock.Mlockall(onfault=True)
        own = Locked()
        os.write(write_fd, f"{inherited} {future} {own}".encode())
        os._exit(0)
    os.waitpid(pid, 0)
    print(parent, os.read(read_fd, 100).decode())
""")


def test_forked_child_must_lock_again():
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    if out == ["not-permitted"]:
        pytest.skip("mlockall is not permitted here")
    parent, inherited, future, own = (int(value) for value in out)
    assert parent > 0
    # Neither the locks nor MCL_FUTURE pass to the child ...
    assert inherited == 0 and future == 0
    # ... which therefore locks its memory itself
    assert own > 0
