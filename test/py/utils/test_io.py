"""Tests for ganeti.utils.io."""

import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ganeti import errors, utils
from ganeti.utils import io as uio


def _Mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _Leftovers(directory):
    return sorted(name for name in os.listdir(directory)
                  if name.endswith(".new"))


class TestWriteFile:
    def test_str_and_bytes(self, tmp_path):
        target = str(tmp_path / "f")
        utils.WriteFile(target, data="h\u00e9llo\n")
        assert utils.ReadFile(target) == "h\u00e9llo\n"
        assert utils.ReadBinaryFile(target) == "h\u00e9llo\n".encode()
        utils.WriteFile(target, data=b"\x00\xff")
        assert utils.ReadBinaryFile(target) == b"\x00\xff"

    def test_empty_data(self, tmp_path):
        target = str(tmp_path / "f")
        utils.WriteFile(target, data="")
        assert utils.ReadFile(target) == ""

    def test_fn(self, tmp_path):
        target = str(tmp_path / "f")
        utils.WriteFile(target, fn=lambda fh: fh.write(b"from fn"))
        assert utils.ReadFile(target) == "from fn"

    def test_default_mode_is_private(self, tmp_path):
        target = str(tmp_path / "f")
        utils.WriteFile(target, data="x")
        assert _Mode(target) == 0o600

    def test_mode(self, tmp_path):
        target = str(tmp_path / "f")
        utils.WriteFile(target, data="x", mode=0o444)
        assert _Mode(target) == 0o444
        # A read-only file can still be replaced: only the directory changes
        utils.WriteFile(target, data="y", mode=0o640)
        assert _Mode(target) == 0o640
        assert utils.ReadFile(target) == "y"

    def test_owner(self, tmp_path):
        target = str(tmp_path / "f")
        uid, gid = os.getuid(), os.getgid()
        utils.WriteFile(target, data="x", uid=uid, gid=gid)
        st_ = os.stat(target)
        assert (st_.st_uid, st_.st_gid) == (uid, gid)

    def test_times(self, tmp_path):
        target = str(tmp_path / "f")
        utils.WriteFile(target, data="x", atime=1000, mtime=2000)
        st_ = os.stat(target)
        assert (st_.st_atime, st_.st_mtime) == (1000, 2000)

    def test_replaces_and_leaves_nothing_behind(self, tmp_path):
        target = str(tmp_path / "f")
        for i in range(5):
            utils.WriteFile(target, data=str(i))
        assert utils.ReadFile(target) == "4"
        assert os.listdir(tmp_path) == ["f"]

    def test_order_of_operations(self, tmp_path, monkeypatch):
        target = str(tmp_path / "f")
        events = []
        real_fsync, real_rename = os.fsync, os.rename

        def _fsync(fd):
            events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
            real_fsync(fd)

        def _rename(old, new):
            events.append(("rename", os.path.dirname(old) == str(tmp_path)))
            real_rename(old, new)

        monkeypatch.setattr(uio.os, "fsync", _fsync)
        monkeypatch.setattr(uio.os, "rename", _rename)
        utils.WriteFile(target, data="x")
        # file synced, renamed from the same directory, directory synced
        assert events == [("fsync", False), ("rename", True), ("fsync", True)]

    def test_error_in_fn_keeps_old_file(self, tmp_path):
        target = str(tmp_path / "f")
        utils.WriteFile(target, data="old", mode=0o644)

        def _fail(fh):
            fh.write(b"partial")
            raise RuntimeError("disk on fire")

        with pytest.raises(RuntimeError):
            utils.WriteFile(target, fn=_fail, mode=0o600)
        assert utils.ReadFile(target) == "old"
        assert _Mode(target) == 0o644
        assert _Leftovers(tmp_path) == []
        assert os.listdir(tmp_path) == ["f"]

    def test_error_in_rename_cleans_up(self, tmp_path):
        target = tmp_path / "dir"
        target.mkdir()
        with pytest.raises(OSError):
            utils.WriteFile(str(target), data="x")
        assert target.is_dir()
        assert os.listdir(tmp_path) == ["dir"]

    def test_missing_directory(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            utils.WriteFile(str(tmp_path / "no" / "f"), data="x")

    def test_dry_run(self, tmp_path):
        target = str(tmp_path / "f")
        utils.WriteFile(target, data="x", dry_run=True)
        assert not os.path.exists(target)
        utils.WriteFile(target, data="old")
        utils.WriteFile(target, data="new", dry_run=True, backup=True)
        assert os.listdir(tmp_path) == ["f"]
        assert utils.ReadFile(target) == "old"

    def test_backup(self, tmp_path):
        target = str(tmp_path / "f")
        utils.WriteFile(target, data="x", backup=True)   # nothing to back up
        assert os.listdir(tmp_path) == ["f"]
        utils.WriteFile(target, data="y", backup=True)
        backups = [name for name in os.listdir(tmp_path) if name != "f"]
        assert len(backups) == 1
        assert backups[0].startswith("f.backup-")
        assert utils.ReadFile(str(tmp_path / backups[0])) == "x"
        assert utils.ReadFile(target) == "y"

    @pytest.mark.parametrize("kp", [uio.KP_ALWAYS, uio.KP_IF_EXISTS])
    def test_keep_perms(self, tmp_path, kp):
        target = str(tmp_path / "f")
        utils.WriteFile(target, data="x", mode=0o604)
        utils.WriteFile(target, data="y", keep_perms=kp)
        assert _Mode(target) == 0o604
        assert utils.ReadFile(target) == "y"

    def test_keep_perms_missing_file(self, tmp_path):
        target = str(tmp_path / "f")
        utils.WriteFile(target, data="x", keep_perms=uio.KP_IF_EXISTS)
        assert _Mode(target) == 0o600
        with pytest.raises(FileNotFoundError):
            utils.WriteFile(str(tmp_path / "g"), data="x",
                            keep_perms=uio.KP_ALWAYS)
        assert not os.path.exists(tmp_path / "g")

    @pytest.mark.parametrize("kwargs", [
        {},
        {"data": "x", "fn": lambda fh: None},
        {"data": 5},
        {"data": "x", "atime": 1},
        {"data": "x", "mtime": 1},
        {"data": "x", "keep_perms": 7},
        {"data": "x", "keep_perms": uio.KP_ALWAYS, "mode": 0o600},
        {"data": "x", "keep_perms": uio.KP_IF_EXISTS, "uid": 0},
    ])
    def test_invalid_arguments(self, tmp_path, kwargs):
        target = str(tmp_path / "f")
        with pytest.raises(errors.ProgrammerError):
            utils.WriteFile(target, **kwargs)
        assert os.listdir(tmp_path) == []

    def test_relative_path(self):
        with pytest.raises(errors.ProgrammerError):
            utils.WriteFile("relative/file", data="x")

    @settings(max_examples=30, deadline=None)
    @given(data=st.binary(max_size=10000))
    def test_round_trip(self, tmp_path_factory, data):
        target = str(tmp_path_factory.mktemp("rt") / "f")
        utils.WriteFile(target, data=data)
        assert utils.ReadBinaryFile(target) == data


def test_read_file_size(tmp_path):
    target = str(tmp_path / "f")
    utils.WriteFile(target, data="abcdef")
    assert utils.ReadFile(target, size=3) == "abc"
    assert utils.ReadBinaryFile(target, size=2) == b"ab"
    with pytest.raises(FileNotFoundError):
        utils.ReadFile(str(tmp_path / "missing"))


class TestReadOneLineFile:
    @pytest.mark.parametrize("content, expected", [
        ("abc", "abc"),
        ("abc\n", "abc"),
        ("\n\nabc\n\n", "abc"),
        ("  spaced  \n", "  spaced  "),
    ])
    def test_values(self, tmp_path, content, expected):
        target = str(tmp_path / "f")
        utils.WriteFile(target, data=content)
        assert utils.ReadOneLineFile(target) == expected
        assert utils.ReadOneLineFile(target, strict=True) == expected

    def test_multiple_lines(self, tmp_path):
        target = str(tmp_path / "f")
        utils.WriteFile(target, data="first\nsecond\n")
        assert utils.ReadOneLineFile(target) == "first"
        with pytest.raises(errors.GenericError, match="Too many lines"):
            utils.ReadOneLineFile(target, strict=True)

    @pytest.mark.parametrize("content", ["", "\n", "\n\n\n"])
    def test_empty(self, tmp_path, content):
        target = str(tmp_path / "f")
        utils.WriteFile(target, data=content)
        with pytest.raises(errors.GenericError, match="No data"):
            utils.ReadOneLineFile(target)


def test_remove_file(tmp_path):
    target = tmp_path / "f"
    target.write_text("x")
    utils.RemoveFile(str(target))
    assert not target.exists()
    utils.RemoveFile(str(target))  # missing: fine
    (tmp_path / "d").mkdir()
    with pytest.raises(OSError):
        utils.RemoveFile(str(tmp_path / "d"))


def test_remove_dir(tmp_path):
    directory = tmp_path / "d"
    directory.mkdir()
    utils.RemoveDir(str(directory))
    assert not directory.exists()
    utils.RemoveDir(str(directory))
    directory.mkdir()
    (directory / "f").write_text("x")
    with pytest.raises(OSError):
        utils.RemoveDir(str(directory))


class TestRenameFile:
    def test_plain(self, tmp_path):
        (tmp_path / "a").write_text("x")
        utils.RenameFile(str(tmp_path / "a"), str(tmp_path / "b"))
        assert (tmp_path / "b").read_text() == "x"
        assert not (tmp_path / "a").exists()

    def test_missing_dir_without_mkdir(self, tmp_path):
        (tmp_path / "a").write_text("x")
        with pytest.raises(FileNotFoundError):
            utils.RenameFile(str(tmp_path / "a"), str(tmp_path / "d" / "b"))
        assert (tmp_path / "a").exists()

    def test_mkdir(self, tmp_path):
        (tmp_path / "a").write_text("x")
        target = tmp_path / "d1" / "d2" / "b"
        utils.RenameFile(str(tmp_path / "a"), str(target), mkdir=True,
                         mkdir_mode=0o711)
        assert target.read_text() == "x"
        assert _Mode(target.parent) == 0o711

    def test_missing_source_with_mkdir(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            utils.RenameFile(str(tmp_path / "none"), str(tmp_path / "b"),
                             mkdir=True)


class TestDirs:
    def test_make_dir_with_perm(self, tmp_path):
        path = str(tmp_path / "d")
        utils.MakeDirWithPerm(path, 0o750, os.getuid(), os.getgid())
        assert os.path.isdir(path)
        assert _Mode(path) == 0o750
        os.chmod(path, 0o777)
        utils.MakeDirWithPerm(path, 0o700)
        assert _Mode(path) == 0o700

    def test_make_dir_over_file(self, tmp_path):
        path = tmp_path / "f"
        path.write_text("x")
        with pytest.raises(errors.GenericError, match="not a directory"):
            utils.MakeDirWithPerm(str(path), 0o700)

    def test_make_dir_missing_parent(self, tmp_path):
        path = str(tmp_path / "a" / "b")
        with pytest.raises(errors.GenericError, match=path):
            utils.MakeDirWithPerm(path, 0o700)

    def test_ensure_dirs(self, tmp_path):
        dirs = [(str(tmp_path / "a"), 0o755),
                (str(tmp_path / "a" / "b"), 0o700, -1, -1),
                (str(tmp_path / "c"), 0o1777)]
        utils.EnsureDirs(dirs)
        utils.EnsureDirs(dirs)   # idempotent
        assert _Mode(tmp_path / "a") == 0o755
        assert _Mode(tmp_path / "a" / "b") == 0o700
        assert _Mode(tmp_path / "c") == 0o1777

    def test_ensure_dirs_bad_entry(self, tmp_path):
        with pytest.raises(errors.ProgrammerError):
            utils.EnsureDirs([(str(tmp_path / "a"),)])


@pytest.mark.parametrize("path, expected", [
    ("/", True),
    ("/a/b", True),
    ("/a/b/", False),
    ("a/b", False),
    ("", False),
    ("/a/../b", False),
    ("/a/./b", False),
    ("//a", False),
    ("/a//b", False),
    (None, False),
    (b"/a", False),
])
def test_is_norm_abs_path(path, expected):
    assert utils.IsNormAbsPath(path) == expected


@pytest.mark.parametrize("root, other, expected", [
    ("/a", "/a/b", True),
    ("/a", "/a/b/c", True),
    ("/a/", "/a/b", True),
    ("/a", "/a", False),
    ("/a", "/a/", False),
    ("/a", "/ab", False),
    ("/a", "/b", False),
    ("/a/b", "/a", False),
    ("/a", "/a/b/../../etc/passwd", False),
    ("/a", "/a/b/../c", True),
    ("/a", "/a/..", False),
    ("/", "/x", True),
    ("/", "/", False),
    ("/x", "/", False),
])
def test_is_below_dir(root, other, expected):
    assert utils.IsBelowDir(root, other) == expected


@pytest.mark.parametrize("root, other", [("a", "/a/b"), ("/a", "a/b"),
                                         ("", "/")])
def test_is_below_dir_relative(root, other):
    with pytest.raises(ValueError):
        utils.IsBelowDir(root, other)


class TestPathJoin:
    @pytest.mark.parametrize("args, expected", [
        (("/",), "/"),
        (("/a",), "/a"),
        (("/a", "b"), "/a/b"),
        (("/a", "b", "c"), "/a/b/c"),
        (("/a", "b/c"), "/a/b/c"),
        (("/", "etc"), "/etc"),
    ])
    def test_valid(self, args, expected):
        assert utils.PathJoin(*args) == expected

    @pytest.mark.parametrize("args", [
        (),
        ("a", "b"),
        ("/a/", "b"),
        ("/a", ".."),
        ("/a", "../b"),
        ("/a", "b/../../c"),
        ("/a", "b/"),
        ("/a", "b//c"),
        ("/a", "/etc/passwd"),
        ("/a", ""),
        ("/a", "."),
        ("/a", 5),
    ])
    def test_invalid(self, args):
        with pytest.raises(ValueError):
            utils.PathJoin(*args)

    @given(st.lists(st.text(alphabet="ab./", min_size=1), max_size=4))
    def test_never_escapes(self, parts):
        try:
            result = utils.PathJoin("/root", *parts)
        except ValueError:
            return
        assert result == "/root" or utils.IsBelowDir("/root", result)
        assert utils.IsNormAbsPath(result)


def test_list_visible_files(tmp_path):
    for name in ("b", "a", ".hidden", ".x.new"):
        (tmp_path / name).write_text("x")
    (tmp_path / "dir").mkdir()
    assert utils.ListVisibleFiles(str(tmp_path)) == ["a", "b", "dir"]
    with pytest.raises(errors.ProgrammerError):
        utils.ListVisibleFiles("relative")
    with pytest.raises(FileNotFoundError):
        utils.ListVisibleFiles(str(tmp_path / "missing"))


class TestCreateBackup:
    def test_backup(self, tmp_path):
        target = str(tmp_path / "conf")
        utils.WriteFile(target, data="content", mode=0o640)
        first = utils.CreateBackup(target)
        second = utils.CreateBackup(target)
        assert first != second
        for backup in (first, second):
            assert os.path.dirname(backup) == str(tmp_path)
            assert os.path.basename(backup).startswith("conf.backup-")
            assert utils.ReadFile(backup) == "content"
            assert _Mode(backup) == 0o640

    def test_not_a_file(self, tmp_path):
        with pytest.raises(errors.ProgrammerError):
            utils.CreateBackup(str(tmp_path))
        with pytest.raises(errors.ProgrammerError):
            utils.CreateBackup(str(tmp_path / "missing"))


class TestTailFile:
    def test_small(self, tmp_path):
        target = str(tmp_path / "log")
        utils.WriteFile(target, data="a\nb\nc\n")
        assert utils.TailFile(target, lines=2) == ["b", "c"]
        assert utils.TailFile(target, lines=10) == ["a", "b", "c"]
        assert utils.TailFile(target, lines=0) == []

    def test_no_final_newline(self, tmp_path):
        target = str(tmp_path / "log")
        utils.WriteFile(target, data="a\nb\nc")
        assert utils.TailFile(target, lines=2) == ["b", "c"]

    def test_empty(self, tmp_path):
        target = str(tmp_path / "log")
        utils.WriteFile(target, data="")
        assert utils.TailFile(target) == []

    def test_large_file_across_chunks(self, tmp_path):
        target = str(tmp_path / "log")
        lines = [f"line {i} " + "x" * (i % 300) for i in range(5000)]
        utils.WriteFile(target, data="\n".join(lines) + "\n")
        assert utils.TailFile(target) == lines[-20:]
        assert utils.TailFile(target, lines=1000) == lines[-1000:]

    def test_invalid_utf8(self, tmp_path):
        target = str(tmp_path / "log")
        utils.WriteFile(target, data=b"ok\n\xff\xfe\n")
        assert utils.TailFile(target) == ["ok", "\ufffd\ufffd"]
