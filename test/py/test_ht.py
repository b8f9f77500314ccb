"""Tests for ganeti.ht: what each check accepts, rejects and says."""

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ganeti import constants, ht

# (check, accepted values, rejected values)
CASES = [
    (ht.TAny, [None, 0, "", [], {}], []),
    (ht.TNone, [None], [0, "", False, []]),
    (ht.TNotNone, [0, "", False], [None]),
    (ht.TBool, [True, False], [0, 1, None, "true"]),
    (ht.TInt, [0, -5, 2 ** 70], [True, False, 1.0, "1", None]),
    (ht.TFloat, [0.0, -1.5], [0, "1.0", None]),
    (ht.TNumber, [0, 1.5, -3], [True, "1", None]),
    (ht.TString, ["", "x"], [None, 1, b"x"]),
    (ht.TNonEmptyString, ["x"], ["", None, 1]),
    (ht.TMaybeString, [None, "", "x"], [1, []]),
    (ht.TMaybeNonEmptyString, [None, "x"], [""]),
    (ht.TTrue, [1, "x", [0]], [0, "", None, []]),
    (ht.TFalse, [0, "", None, []], [1, "x"]),
    (ht.TList, [[], [1], (1, 2)], [None, {}, "ab"]),
    (ht.TTuple, [(), (1,)], [[], None]),
    (ht.TDict, [{}, {"a": 1}], [[], None]),
    (ht.TMaybeDict, [None, {}], [[]]),
    (ht.TMaybeBool, [None, True], [0]),
    (ht.TMaybeList, [None, []], [{}]),
    (ht.TCallable, [len, lambda: 0], [None, 1]),
    (ht.TPositiveInt, [1, 10 ** 9], [0, -1, 1.5, True, None]),
    (ht.TNonNegativeInt, [0, 1], [-1, 0.5, False, None]),
    (ht.TNonNegativeFloat, [0, 0.0, 2.5], [-0.1, None, True]),
    (ht.TMaybePositiveInt, [None, 3], [0]),
    (ht.TEmptyList, [[], ()], [[1], {}]),
    (ht.TEmptyDict, [{}], [{"a": 1}, []]),
    (ht.TValueNone, ["none"], [None, "None", ""]),
    (ht.TMaybeValueNone, [None, "none"], ["x"]),
    (ht.TJobId, [0, 17, "17", "0"], [-1, "x", "1a", "", None, 1.0, True]),
    (ht.TRelativeJobId, [-1, -100], [0, 1, "-1", -1.0]),
    (ht.TJobIdListOnly,
     [{"jobs": []}, {"jobs": [[True, 1], (False, "error text")]}],
     [{}, {"jobs": [[True]]}, {"jobs": [], "x": 1}, {"jobs": [[1, 2]]}]),
    (ht.TIPv4Address, ["192.0.2.1", "0.0.0.0"],
     ["192.0.2.256", "2001:db8::1", "", None, 3232235521]),
    (ht.TIPv6Address, ["2001:db8::1", "::"], ["192.0.2.1", "2001:db8::g", None]),
    (ht.TIPAddress, ["192.0.2.1", "::1"], ["host", None]),
    (ht.TIPv4Network, ["192.0.2.0/24", "10.0.0.0/8", "192.0.2.5/24"],
     ["192.0.2.0/33", "2001:db8::/64", "x", None]),
    (ht.TIPv6Network, ["2001:db8::/64"], ["192.0.2.0/24", "2001:db8::/129"]),
    (ht.TMaybeIPv4Address, [None, "192.0.2.1"], ["::1"]),
    (ht.TQueryFilter, [None, [], ["=", "name", "x"]], ["x", {}]),
    (ht.TDiskParams, [{}, {"size": 1024, "mode": "rw"}, {"size": "10G"}],
     [{"size": None}, {"": 1}, {"size": 1.5}, []]),
    (ht.TNicParams, [{}, {"mac": "auto", "ip": None, "link": "br0"}],
     [{"bogus": "x"}, {"mode": 1}, None]),
]


@pytest.mark.parametrize("check,good,bad", CASES,
                         ids=[str(case[0]) for case in CASES])
def test_accepts_and_rejects(check, good, bad):
    for value in good:
        assert check(value) is True, (str(check), value)
    for value in bad:
        assert check(value) is False, (str(check), value)


@pytest.mark.parametrize("check,desc", [
    (ht.TPositiveInt, "positive integer"),
    (ht.TNonNegativeInt, "non-negative integer"),
    (ht.TNonEmptyString, "non-empty string"),
    (ht.TMaybeString, "None or string"),
    (ht.TMaybe(ht.TListOf(ht.TNonEmptyString)),
     "None or list of non-empty string"),
    (ht.TListOf(ht.TMaybeString), "list of (None or string)"),
    (ht.TDictOf(ht.TString, ht.TInt),
     "dictionary with string keys and integer values"),
    (ht.TOr(ht.TInt, ht.TString), "integer or string"),
    (ht.TAnd(ht.TList, ht.TIsLength(2)), "list and length 2"),
    (ht.TNot(ht.TNone), "not None"),
    (ht.TElemOf(["b", "a"]), "one of 'a', 'b'"),
    (ht.TElemOf(["only"]), "'only'"),
    (ht.TElemOf(range(-20, 20)), "integer from -20 to 19"),
    (ht.TItems([ht.TBool, ht.TString]), "[boolean, string]"),
    (ht.TRegex("^a+$"), "string matching /^a+$/"),
    (ht.TInstanceOf(dict), "dict object"),
    (ht.TIPv4Address, "IPv4 address"),
    (ht.TJobId, "job ID"),
])
def test_descriptions(check, desc):
    assert str(check) == desc
    assert check.description == desc
    assert ht.TypeDescription(check) == desc
    assert desc in repr(check)


def test_with_desc_and_comment():
    @ht.WithDesc("even number")
    def is_even(value):
        return ht.TInt(value) and value % 2 == 0

    assert is_even(2) and not is_even(3) and not is_even("2")
    assert str(is_even) == "even number"
    assert str(ht.TListOf(is_even)) == "list of even number"
    commented = ht.Comment("in MiB")(ht.TPositiveInt)
    assert commented(5) and not commented(0)
    assert str(commented) == "positive integer (in MiB)"
    assert str(ht.Comment("x")(ht.TMaybeInt)) == "(None or integer) (x)"


def test_type_description_of_plain_callables():
    def is_small(value):
        return value < 3

    assert ht.TypeDescription(is_small) == "is_small"
    assert ht.TypeDescription(ht.NoType) == "anything (not checked)"
    assert "lambda" in ht.TypeDescription(lambda v: True)
    # Plain callables compose too
    check = ht.TAnd(ht.TInt, is_small)
    assert check(2) and not check(3)
    assert str(check) == "integer and is_small"


def test_elem_of():
    check = ht.TElemOf([0, 1, 2])
    assert check(1)
    assert not check(True)  # True == 1 but is not a member here
    assert not check([1])   # unhashable values are never members
    assert ht.TElemOf([True, None])(True)
    assert ht.TElemOf(constants.OP_PRIO_ALL)(-20)
    assert not ht.TElemOf(constants.OP_PRIO_ALL)(20)


def test_list_and_dict_of():
    check = ht.TListOf(ht.TInt)
    assert check([]) and check([1, 2]) and check((1, 2))
    assert not check([1, "2"]) and not check("12") and not check(None)
    check = ht.TDictOf(ht.TNonEmptyString, ht.TMaybeInt)
    assert check({}) and check({"a": None, "b": 2})
    assert not check({"": 1}) and not check({"a": "1"}) and not check([])
    assert ht.TMaybeListOf(ht.TInt)(None)


def test_strict_dict():
    items = {"a": ht.TInt, "b": ht.TString}
    both = ht.TStrictDict(True, True, items)
    assert both({"a": 1, "b": "x"})
    assert not both({"a": 1})
    assert not both({"a": 1, "b": "x", "c": 0})
    assert not both({"a": "1", "b": "x"})
    assert not both(None)
    loose = ht.TStrictDict(False, False, items)
    assert loose({}) and loose({"c": object()}) and loose({"a": 1})
    assert not loose({"a": "x"})
    assert ht.TStrictDict(True, False, items)({"a": 1, "b": "", "z": 0})
    assert ht.TStrictDict(False, True, items)({"b": ""})
    assert not ht.TStrictDict(False, True, items)({"z": 0})
    assert str(both) == ("dictionary with keys 'a' (integer), 'b' (string) "
                         "[all required, no others allowed]")


def test_items_and_length():
    check = ht.TItems([ht.TBool, ht.TInt])
    assert check([True, 1]) and check((False, 2)) and check([True, 1, "x"])
    assert not check([True]) and not check([1, 1]) and not check("ab")
    exact = ht.TAnd(ht.TIsLength(2), check)
    assert not exact([True, 1, "x"])
    assert not ht.TIsLength(1)(5)


def test_regex():
    assert ht.TRegex("^[a-z]+$")("abc")
    assert not ht.TRegex("^[a-z]+$")("ab1")
    assert not ht.TRegex("x")(None)
    assert ht.TRegex("b")("b") and not ht.TRegex("b")("ab")  # anchored start


def test_positive_non_negative_factories():
    assert ht.TPositive(ht.TNumber)(0.5)
    assert not ht.TPositive(ht.TNumber)(0)
    assert ht.TNonNegative(ht.TFloat)(0.0)
    assert not ht.TNonNegative(ht.TFloat)(0)
    assert str(ht.TPositive(ht.TFloat)) == "positive float"


def test_set_params_mods():
    check = ht.TSetParamsMods(ht.TDiskParams)
    good = [
        [],
        [["add", -1, {"size": 1024}]],
        [("modify", 0, {"mode": "ro"}), ("remove", "disk-name", {})],
        [["attach", -1, {"name": "d1"}], ["detach", 1, {}]],
        [["add", {"size": 1}]],          # legacy form
        [[0, {"mode": "rw"}]],           # legacy: modify by index
        [["remove", {}]],
    ]
    bad = [
        None,
        [["grow", 0, {}]],
        [["add", 0]],
        [["add", 0, {"size": None}]],
        [["modify", {}]],                # legacy form has no modify
        [[-1, {}]],                      # legacy index must be >= 0
        [["add", 0, {}], ["add", {}]],   # forms cannot be mixed
    ]
    for value in good:
        assert check(value), value
    for value in bad:
        assert not check(value), value
    assert "action, index or name" in str(check)


def test_job_id_list_item():
    assert ht.TJobIdListItem([True, "12"])
    assert ht.TJobIdListItem((False, "no such node"))
    assert not ht.TJobIdListItem([True, 1, 2])
    assert not ht.TJobIdListItem(["yes", 1])


def test_sentinels():
    assert repr(ht.NoDefault) == "NoDefault"
    assert repr(ht.NoType) == "NoType"
    assert ht.NoDefault is not ht.NoType
    assert copy.deepcopy(ht.NoDefault) is ht.NoDefault
    assert copy.copy(ht.NoType) is ht.NoType


def test_default_factories():
    first, second = ht.EmptyList(), ht.EmptyList()
    assert first == [] and first is not second
    assert ht.EmptyDict() == {} and ht.EmptyDict() is not ht.EmptyDict()


@given(st.lists(st.integers()))
def test_list_of_ints_property(values):
    assert ht.TListOf(ht.TInt)(values)
    assert ht.TMaybe(ht.TListOf(ht.TInt))(values)
    assert not ht.TListOf(ht.TString)(values) or not values


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                 st.text(), st.lists(st.integers())))
def test_maybe_and_not_property(value):
    for check in (ht.TInt, ht.TString, ht.TBool, ht.TList):
        assert ht.TMaybe(check)(value) == (value is None or check(value))
        assert ht.TNot(check)(value) == (not check(value))
        assert ht.TOr(check, ht.TNone)(value) == ht.TMaybe(check)(value)
        assert ht.TAnd(check, ht.TAny)(value) == check(value)


@given(st.integers(min_value=0, max_value=2 ** 32 - 1))
def test_ipv4_property(number):
    import ipaddress
    assert ht.TIPv4Address(str(ipaddress.IPv4Address(number)))
    assert not ht.TIPv6Address(str(ipaddress.IPv4Address(number)))


# --- Names, paths and text (issue 15) ---------------------------------------------------

#: The values of the issue's reproductions
LONG_NETDEV = "x" * 10000
LONG_GROUP = "g" * 10000
TRAVERSAL = "../../../etc/passwd"

NAME_CASES = [
    (ht.THostname,
     ["node1", "node1.example.com", "node1.example.com.", "NODE1.Example.com",
      "a_b", "inst-1", "1", "x" * 63 + ".example.com",
      ".".join(["a" * 63] * 3 + ["b" * 61])],                         # 253
     ["", ".", "..", ".node1", "node1..example", "-node", "node-", "node 1",
      "node/1", "x" * 64, ".".join(["a" * 63] * 3 + ["b" * 62]),  # 254
      LONG_NETDEV, TRAVERSAL, "nöde", "a\nb", None, 1]),
    (ht.TObjectName,
     ["default", "rack-1_b", "group with spaces", "debian+default", "a.b",
      "1", "Ünïcode", "x" * 255, "0f4e1f7c-3ab2-4c3e-9d0a-33f4f0f2b0e1"],
     ["", ".", "..", ".hidden", "a/b", "/", TRAVERSAL, " padded", "padded ",
      "tab\there", "new\nline", "x" * 256, LONG_GROUP, None, 5]),
    (ht.TInterfaceName,
     ["lo", "eth0", "br-ganeti.100", "xen-br0", "x" * 15, "a..", "_"],
     ["", ".", "..", "x" * 16, LONG_NETDEV, "eth0/1", "../eth0", "eth 0",
      "eth\t0", "eth0:1", "brüc", "br\x00", None, 0]),
    (ht.TNormAbsPath,
     ["/", "/srv/ganeti/file-storage", "/bin/true", "/a b/c"],
     ["", "relative", "/srv/", "/srv//x", "//srv", "/srv/../etc", "/srv/./x",
      TRAVERSAL, "/a\nb", "/" + "x" * 4095, None]),
    (ht.TStorageDir,
     ["/srv/ganeti/file-storage", "/srv", "/var/lib/images", "/etc/ganeti-fs",
      "/usr/local/images", "/home2"],
     ["/", "/etc", "/usr", "/usr/local", "/usr/lib", "/usr/local/bin", "/boot",
      "/dev", "/proc", "/sys", "/root", "/home", "/lib64", "/srv/../etc",
      "relative", "", TRAVERSAL]),
    (ht.TRelativePath,
     ["mydir", "a/b", "web.servers", "a..b"],
     ["", ".", "..", "../x", "a/../../x", "a/..", "/abs", "a//b", "a/", "./a",
      TRAVERSAL, "a\nb", None]),
    (ht.TPathOrUrl,
     ["/srv/images/install.img", "http://example.com/a.img",
      "https://example.com/x?y=1", "file:///srv/a.img"],
     ["", "image.img", "http://", "http://a b", "ftp:/x", "/srv/../x", None]),
    (ht.TLvmName,
     ["xenvg", "ganeti_vg", "vg-1", "a+b.c", "x" * 127],
     ["", ".", "..", "-vg", "vg 1", "vg/1", "x" * 128, TRAVERSAL, None]),
    (ht.TProgramName,
     ["gzip", "gzip-fast", "lzop", "my_tool", "x" * 64, "none"],
     ["", "gzip -9", "gzip;reboot", "/bin/gzip", "../gzip", "x" * 65,
      "gz\u00edp", None]),
    (ht.TIallocatorName,
     [".", "hail", "my-alloc.py", "/usr/lib/ganeti/iallocators/hail"],
     ["", "..", "hail --x", "dir/hail", "/usr/../hail", "x" * 256, None]),
    (ht.TMacPrefix, ["aa:00:00", "AA:bb:0C"],
     ["", "aa:00", "aa:00:00:00", "zz:00:00", "aa-00-00", None]),
    (ht.TRegexPattern, ["^site:", "", "xenvg/test.*", "x" * 1024],
     ["(", "[a-", "*x", "x" * 1025, None]),
    (ht.TText(10), ["", "short", "new\nline"], ["x" * 11, None, 1]),
    (ht.TShortString(10), ["a", "x" * 10, "with space"],
     ["", "x" * 11, "new\nline", None]),
    (ht.TEmptyString, [""], ["x", None, []]),
    (ht.TNicParams,
     [{}, {"link": "br0", "mode": "bridged"}, {"link": ""}, {"link": None},
      {"bridge": "xen-br0"}, {"network": "net1", "ip": "pool"},
      {"mac": "aa:00:00:11:22:33", "vlan": ".100", "name": "nic0"}],
     [{"link": "bridge-too-long-x"}, {"link": "a b"}, {"link": "br/0"},
      {"bridge": LONG_NETDEV}, {"network": TRAVERSAL}, {"name": "x" * 256},
      {"mac": "a\nb"}, {"bogus": "x"}, {"mode": 1}, None]),
    (ht.TDiskParams,
     [{"size": 1024, "name": "disk0", "vg": "xenvg"}, {"adopt": "x" * 1024}],
     [{"name": "x" * 1025}, {"vg": "a\nb"}, {"x" * 256: 1}]),
]


@pytest.mark.parametrize("check,good,bad", NAME_CASES,
                         ids=[str(case[0])[:40] for case in NAME_CASES])
def test_name_checks(check, good, bad):
    for value in good:
        assert check(value) is True, (str(check), value)
    for value in bad:
        assert check(value) is False, (str(check), value)


@pytest.mark.parametrize("check,needles", [
    (ht.THostname, ["host name", "63", "253"]),
    (ht.TObjectName, ["name", "at most 255", "no '/'", "'.'"]),
    (ht.TInterfaceName, ["network interface name", "at most 15", "no '/'",
                         "spaces", "'.' or '..'"]),
    (ht.TNormAbsPath, ["normalised absolute path", "4095"]),
    (ht.TStorageDir, ["normalised absolute path", "system directory"]),
    (ht.TRelativePath, ["relative path", "'..'"]),
    (ht.TLvmName, ["LVM name", "127"]),
    (ht.TProgramName, ["program name", "64"]),
    (ht.TRegexPattern, ["regular expression", "1024"]),
    (ht.TText(7), ["at most 7 characters"]),
    (ht.TNicParams, ["NIC parameters", "'link'", "at most 15"]),
])
def test_name_check_descriptions_say_what_is_expected(check, needles):
    for needle in needles:
        assert needle in str(check), str(check)


def test_short_repr_cuts_long_values():
    assert ht.ShortRepr("abc") == "'abc'"
    assert ht.ShortRepr(LONG_NETDEV) == "'" + "x" * 50 + "'..."
    assert ht.ShortRepr(-1) == "-1" and ht.ShortRepr(None) == "None"
    assert ht.ShortRepr((1,)) == "(1,)" and ht.ShortRepr(()) == "()"
    assert ht.ShortRepr({"a": [1, "b"]}) == repr({"a": [1, "b"]})
    # Long strings inside containers are cut too, keys included
    assert ht.ShortRepr({"k" * 60: "v"}) == "{'" + "k" * 50 + "'...: 'v'}"
    assert ht.ShortRepr([LONG_GROUP]) == "['" + "g" * 50 + "'...]"
    # And so is the whole rendering, without walking all of a huge value
    text = ht.ShortRepr(list(range(10 ** 6)))
    assert len(text) == ht.MAX_SHOWN_VALUE + 3 and text.endswith("...")
    assert len(ht.ShortRepr(["y" * 100] * 1000)) <= ht.MAX_SHOWN_VALUE + 3


@given(st.text(min_size=1, max_size=20))
def test_interface_name_property(name):
    # The kernel's rules, restated
    expected = (len(name) <= 15 and name.isascii() and name.isprintable()
                and name not in (".", "..")
                and not any(ch in "/:" or ch.isspace() for ch in name))
    assert ht.TInterfaceName(name) == expected
