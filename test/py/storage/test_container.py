"""storage.container: storage units of file storage."""

from __future__ import annotations

import pytest

from ganeti import constants, errors
from ganeti.storage import container

FSD = "/srv/ganeti/file-storage"
FIELDS = [constants.SF_NAME, constants.SF_TYPE, constants.SF_SIZE, constants.SF_USED,
          constants.SF_FREE, constants.SF_ALLOCATABLE]


def test_list_file_units(node_root):
    with open(f"{node_root}{FSD}/img", "wb") as fd:
        fd.write(b"x" * (3 * 1024 * 1024))
    rows = container.GetStorage(constants.ST_FILE).List(None, FIELDS)
    assert len(rows) == 1
    name, stype, size, used, free, alloc = rows[0]
    assert (name, stype, alloc) == (f"{node_root}{FSD}", constants.ST_FILE, True)
    assert size >= free > 0 and used == 3
    assert container.GetStorage(constants.ST_FILE).List(FSD, [constants.SF_NAME]) == \
        [[f"{node_root}{FSD}"]]


def test_space(node_root):
    space = container.GetStorage(constants.ST_SHARED_FILE).GetSpace(
        "/srv/ganeti/shared-file-storage")
    assert space["type"] == constants.ST_SHARED_FILE
    assert space["storage_size"] >= space["storage_free"] > 0


def test_explicit_paths(tmp_path):
    rows = container.FileStorage([str(tmp_path)]).List(None, [constants.SF_NAME])
    assert rows == [[str(tmp_path)]]


def test_bad(node_root):
    with pytest.raises(errors.StorageError,
                       match="rados.*supported: file, lvm-pv, lvm-vg, sharedfile"):
        container.GetStorage(constants.ST_RADOS)
    with pytest.raises(errors.StorageError, match="Unknown storage field.*bogus"):
        container.GetStorage(constants.ST_FILE).List(None, ["bogus"])
    with pytest.raises(errors.StorageError, match="'/elsewhere' is not a file storage unit"):
        container.GetStorage(constants.ST_FILE).List("/elsewhere", [constants.SF_NAME])


@pytest.mark.parametrize("paths", ["/srv", ["relative"], [None], {"/srv": 1}])
def test_bad_paths(paths):
    """Found by test/integration/test_fuzz.py: storage_list('file', [dir], ...)
    took the directory name for a list of paths and walked '/'."""
    with pytest.raises(errors.StorageError, match="list of absolute paths"):
        container.GetStorage(constants.ST_FILE, paths)
