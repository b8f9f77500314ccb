"""Tests for ganeti.utils.text."""

import shlex
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ganeti import errors, utils


class TestParseUnit:
    @pytest.mark.parametrize("value, expected", [
        ("0", 0),
        ("1", 4),
        ("4", 4),
        ("5", 8),
        ("512", 512),
        (512, 512),
        ("512M", 512),
        ("512m", 512),
        ("512 MB", 512),
        ("512MiB", 512),
        ("512mib", 512),
        ("10G", 10240),
        ("10g", 10240),
        ("10GB", 10240),
        ("10GiB", 10240),
        ("1T", 1048576),
        ("1tib", 1048576),
        ("1.5G", 1536),
        ("0.5g", 512),
        (".5G", 512),
        ("1.", 4),
        ("0.1", 4),
        ("0.001G", 4),       # 1.024 MiB rounds up to 2, then to 4
        ("3.9", 4),
        ("  7 m  ", 8),
    ])
    def test_valid(self, value, expected):
        assert utils.ParseUnit(value) == expected

    @pytest.mark.parametrize("value", [
        "", " ", "M", "-1", "-1G", "1.2.3", "1,5G", "10X", "10 GG", "1e3",
        "10Gb3", "0x10", "ten", None, 1.5, True, [], "1 2", "\u0663",
    ])
    def test_invalid(self, value):
        with pytest.raises(errors.UnitParseError) as info:
            utils.ParseUnit(value)
        assert str(value) in str(info.value)

    def test_unknown_unit_named(self):
        with pytest.raises(errors.UnitParseError, match="unknown unit 'kb'"):
            utils.ParseUnit("10kb")

    @given(st.integers(min_value=0, max_value=10**12))
    def test_plain_mebibytes_round_up_to_4(self, n):
        result = utils.ParseUnit(str(n))
        assert result % 4 == 0
        assert n <= result < n + 4

    @given(st.integers(min_value=0, max_value=10**6),
           st.sampled_from([("M", 1), ("G", 1024), ("T", 1024 * 1024)]))
    def test_units_exact(self, n, unit):
        suffix, factor = unit
        expected = n * factor
        expected += -expected % 4
        assert utils.ParseUnit(f"{n}{suffix}") == expected


class TestFormatUnit:
    @pytest.mark.parametrize("value, units, expected", [
        (0, "h", "0M"),
        (1, "h", "1M"),
        (512, "h", "512M"),
        (1023, "h", "1023M"),
        (1024, "h", "1.0G"),
        (1536, "h", "1.5G"),
        (10240, "h", "10.0G"),
        (1024 * 1024 - 1, "h", "1024.0G"),
        (1024 * 1024, "h", "1.0T"),
        (5 * 1024 * 1024 + 512 * 1024, "h", "5.5T"),
        (1024, "m", "1024"),
        (1536, "g", "1.5"),
        (512, "g", "0.5"),
        (1024 * 1024, "t", "1.0"),
        (1024, "t", "0.0"),
        (100.4, "m", "100"),
    ])
    def test_values(self, value, units, expected):
        assert utils.FormatUnit(value, units) == expected

    @pytest.mark.parametrize("value, units, expected", [
        (512, "h", "DXIIM"),
        (1024, "h", "IG"),
        (1536, "g", "II"),       # 1.5 rounds to 2
        (0, "m", "0"),           # no roman zero: falls back to decimals
        (4000, "m", "4000"),     # above MMMCMXCIX: decimals
        (1994, "m", "MCMXCIV"),
    ])
    def test_roman(self, value, units, expected):
        assert utils.FormatUnit(value, units, roman=True) == expected

    @pytest.mark.parametrize("units", ["", "k", "H", "mb", None])
    def test_bad_unit(self, units):
        with pytest.raises(errors.ProgrammerError):
            utils.FormatUnit(1, units)

    @pytest.mark.parametrize("value", ["1", None, True, [1]])
    def test_bad_value(self, value):
        with pytest.raises(errors.ProgrammerError):
            utils.FormatUnit(value, "h")

    @given(st.integers(min_value=0, max_value=1023))
    def test_parse_of_mebibyte_format(self, n):
        n -= n % 4
        assert utils.ParseUnit(utils.FormatUnit(n, "h")) == n


class TestMatchNameComponent:
    NAMES = ["node1.example.com", "node10.example.com", "node2.example.com",
             "other.example.org"]

    @pytest.mark.parametrize("key, expected", [
        ("node1", "node1.example.com"),
        ("node1.example", "node1.example.com"),
        ("node1.example.com", "node1.example.com"),
        ("node10", "node10.example.com"),
        ("node1.ex", None),
        ("node", None),
        ("NODE1", None),
        ("missing", None),
        ("", None),
    ])
    def test_case_sensitive(self, key, expected):
        assert utils.MatchNameComponent(key, self.NAMES) == expected

    def test_case_insensitive(self):
        assert utils.MatchNameComponent("NODE1", self.NAMES,
                                        case_sensitive=False) == \
            "node1.example.com"

    def test_ambiguous(self):
        names = ["test1.example.com", "test1.example.org"]
        assert utils.MatchNameComponent("test1", names) is None
        assert utils.MatchNameComponent("test1.example.org", names) == \
            "test1.example.org"

    def test_exact_match_wins(self):
        names = ["test1", "test1.example.com"]
        assert utils.MatchNameComponent("test1", names) == "test1"

    def test_exact_case_insensitive_wins(self):
        names = ["Test1", "test1.example.com"]
        assert utils.MatchNameComponent("TEST1", names,
                                        case_sensitive=False) == "Test1"
        both = ["Test1", "tEST1"]
        assert utils.MatchNameComponent("test1", both,
                                        case_sensitive=False) is None

    def test_regex_characters_are_literal(self):
        assert utils.MatchNameComponent("a.c", ["abc.x"]) is None
        assert utils.MatchNameComponent("a+", ["a+.x", "aa.x"]) == "a+.x"

    def test_accepts_iterators(self):
        assert utils.MatchNameComponent("b", iter(["a.x", "b.x"])) == "b.x"


class TestSafeEncode:
    @pytest.mark.parametrize("value, expected", [
        ("plain text", "plain text"),
        ("a\tb\nc\rd", r"a\tb\nc\rd"),
        ("\x00\x1f\x7f", r"\x00\x1f\x7f"),
        ("caf\u00e9", r"caf\xe9"),
        ("\u2603", r"\u2603"),
        (b"ab\xffc", r"ab\xffc"),
        ("back\\slash 'q'", "back\\slash 'q'"),
    ])
    def test_values(self, value, expected):
        assert utils.SafeEncode(value) == expected

    @given(st.text())
    def test_result_is_printable_ascii(self, value):
        result = utils.SafeEncode(value)
        assert all(32 <= ord(c) < 127 for c in result)


class TestMac:
    @pytest.mark.parametrize("mac", ["aa:00:00:11:22:33", "AA:BB:CC:DD:EE:FF",
                                     "0a:1B:2c:3D:4e:5F"])
    def test_valid(self, mac):
        assert utils.NormalizeAndValidateMac(mac) == mac.lower()

    @pytest.mark.parametrize("mac", ["", "aa:00:00:11:22", "aa:00:00:11:22:33:44",
                                     "aa-00-00-11-22-33", "aa:00:00:11:22:3g",
                                     "aa:0:00:11:22:33", " aa:00:00:11:22:33",
                                     "aa:00:00:11:22:33\n", None, 12])
    def test_invalid(self, mac):
        with pytest.raises(errors.OpPrereqError) as info:
            utils.NormalizeAndValidateMac(mac)
        assert info.value.args[1] == errors.ECODE_INVAL
        assert str(mac) in info.value.args[0]

    def test_prefix(self):
        assert utils.NormalizeAndValidateThreeOctetMacPrefix("AA:00:0F") == \
            "aa:00:0f"
        with pytest.raises(errors.OpPrereqError):
            utils.NormalizeAndValidateThreeOctetMacPrefix("aa:00:00:11")


def test_comma_join():
    assert utils.CommaJoin([]) == ""
    assert utils.CommaJoin(["a"]) == "a"
    assert utils.CommaJoin(["a", 1, None]) == "a, 1, None"
    assert utils.CommaJoin(x for x in "xy") == "x, y"


def test_generate_secret():
    secret = utils.GenerateSecret()
    assert len(secret) == 40
    int(secret, 16)
    assert len(utils.GenerateSecret(8)) == 16
    assert utils.GenerateSecret() != utils.GenerateSecret()


class TestFormatTime:
    @pytest.fixture(autouse=True)
    def _utc(self, monkeypatch):
        monkeypatch.setenv("TZ", "UTC")
        time.tzset()
        yield
        monkeypatch.undo()
        time.tzset()

    def test_values(self):
        assert utils.FormatTime(0) == "1970-01-01 00:00:00"
        assert utils.FormatTime(1234567890.7) == "2009-02-13 23:31:30"
        assert utils.FormatTime(60, usecs=42) == "1970-01-01 00:01:00.000042"

    @pytest.mark.parametrize("value", [None, "123", True, [1]])
    def test_not_a_time(self, value):
        assert utils.FormatTime(value) == "N/A"


@pytest.mark.parametrize("secs, expected", [
    (0, "0s"),
    (0.4, "0s"),
    (1, "1s"),
    (59.6, "1m 0s"),
    (60, "1m 0s"),
    (3600, "1h 0m 0s"),
    (3661, "1h 1m 1s"),
    (86400, "1d 0h 0m 0s"),
    (2 * 86400 + 9 * 3600 + 19 * 60 + 49, "2d 9h 19m 49s"),
    (93784, "1d 2h 3m 4s"),
    (-5, "-5s"),
])
def test_format_seconds(secs, expected):
    assert utils.FormatSeconds(secs) == expected


class TestUnescapeAndSplit:
    @pytest.mark.parametrize("value, sep, expected", [
        ("", ",", [""]),
        ("a", ",", ["a"]),
        ("a,b,c", ",", ["a", "b", "c"]),
        ("a,,b", ",", ["a", "", "b"]),
        ("a,", ",", ["a", ""]),
        (r"a\,b,c", ",", ["a,b", "c"]),
        (r"a\\,b", ",", ["a\\", "b"]),
        (r"a\\\,b", ",", ["a\\,b"]),
        (r"a\b", ",", ["ab"]),
        ("a\\", ",", ["a\\"]),
        ("a:b\\:c", ":", ["a", "b:c"]),
        ("a::b\\::c", "::", ["a", "b::c"]),
    ])
    def test_values(self, value, sep, expected):
        assert utils.UnescapeAndSplit(value, sep=sep) == expected

    def test_empty_separator(self):
        with pytest.raises(errors.ProgrammerError):
            utils.UnescapeAndSplit("abc", sep="")

    @given(st.lists(st.text(), min_size=1), st.sampled_from([",", ":", "|"]))
    def test_round_trip(self, items, sep):
        joined = utils.EscapeAndJoin(items, sep=sep)
        assert utils.UnescapeAndSplit(joined, sep=sep) == items

    def test_escape_multichar_separator_refused(self):
        with pytest.raises(errors.ProgrammerError):
            utils.EscapeAndJoin(["a"], sep="::")


class TestShell:
    @pytest.mark.parametrize("value, expected", [
        ("abc", "abc"),
        ("/usr/bin/x-y_z+1@host:2,3=4", "/usr/bin/x-y_z+1@host:2,3=4"),
        ("", "''"),
        ("a b", "'a b'"),
        ("it's", "'it'\\''s'"),
        ("$HOME", "'$HOME'"),
        ("a;rm -rf /", "'a;rm -rf /'"),
        ("abc\n", "'abc\n'"),
    ])
    def test_quote(self, value, expected):
        assert utils.ShellQuote(value) == expected

    @given(st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"],
                                                   blacklist_characters="\x00"))))
    def test_quote_args_round_trip(self, args):
        assert shlex.split(utils.ShellQuoteArgs(args)) == args

    def test_build_shell_cmd(self):
        assert utils.BuildShellCmd("ls %s %s", "/tmp", "-l") == "ls /tmp -l"
        assert utils.BuildShellCmd("echo %s%%", "50") == "echo 50%"

    @pytest.mark.parametrize("arg", ["a b", "$(id)", "a;b", "`x`", "", "a'b",
                                     "a\nb"])
    def test_build_shell_cmd_refuses(self, arg):
        with pytest.raises(errors.ProgrammerError, match="invalid characters"):
            utils.BuildShellCmd("echo %s", arg)


def test_filter_empty_lines_and_comments():
    data = "\n  # comment\nfoo\n   bar  \n\n#x\nbaz # not a comment\n \t\n"
    assert utils.FilterEmptyLinesAndComments(data) == \
        ["foo", "bar", "baz # not a comment"]
    assert utils.FilterEmptyLinesAndComments("") == []

