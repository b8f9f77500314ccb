"""Tests for ganeti.utils.algo."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ganeti import errors, utils


def test_unique_sequence():
    assert utils.UniqueSequence([]) == []
    assert utils.UniqueSequence([3, 1, 3, 2, 1]) == [3, 1, 2]
    assert utils.UniqueSequence("abcab") == ["a", "b", "c"]


@given(st.lists(st.integers(min_value=0, max_value=10)))
def test_unique_sequence_property(items):
    result = utils.UniqueSequence(items)
    assert len(result) == len(set(items))
    assert set(result) == set(items)
    assert result == sorted(set(items), key=items.index)


def test_find_duplicates():
    assert utils.FindDuplicates([]) == []
    assert utils.FindDuplicates([1, 2, 3]) == []
    assert utils.FindDuplicates([1, 2, 2, 1, 1, 3]) == [2, 1]
    assert utils.FindDuplicates("hello") == ["l"]


def test_join_disjoint_dicts():
    assert utils.JoinDisjointDicts({"a": 1}, {"b": 2}) == {"a": 1, "b": 2}
    assert utils.JoinDisjointDicts({}, {}) == {}
    with pytest.raises(errors.ProgrammerError, match="b, c"):
        utils.JoinDisjointDicts({"a": 1, "b": 2, "c": 3}, {"b": 3, "c": 4})


def test_sequence_to_dict():
    items = [("a", 1), ("b", 2)]
    assert utils.SequenceToDict(items) == {"a": ("a", 1), "b": ("b", 2)}
    assert utils.SequenceToDict(items, key=lambda item: item[1]) == \
        {1: ("a", 1), 2: ("b", 2)}
    with pytest.raises(ValueError, match="Duplicate keys found: a"):
        utils.SequenceToDict([("a", 1), ("a", 2), ("a", 3)])


def test_flat_to_dict():
    assert utils.FlatToDict({}) == {}
    assert utils.FlatToDict({"a/b": 1, "a/c": 2, "d": 3}) == \
        {"a": {"b": 1, "c": 2}, "d": 3}
    assert utils.FlatToDict({"a.b.c": 1}, field_sep=".") == {"a": {"b": {"c": 1}}}
    with pytest.raises(ValueError):
        utils.FlatToDict({"a": 1, "a/b": 2})
    with pytest.raises(ValueError):
        utils.FlatToDict({"a/b": 2, "a": 1})


def test_invert_dict():
    assert utils.InvertDict({"a": 1, "b": 2}) == {1: "a", 2: "b"}
    with pytest.raises(ValueError):
        utils.InvertDict({"a": 1, "b": 1})


class TestNiceSort:
    def test_natural(self):
        data = ["node10", "node2", "node1", "node1a", "node", "a9", "a10b2",
                "a10b10", "a10"]
        assert utils.NiceSort(data) == ["a9", "a10", "a10b2", "a10b10", "node",
                                        "node1", "node1a", "node2", "node10"]

    def test_mixed_leading_digits(self):
        assert utils.NiceSort(["b", "10", "a", "9", ""]) == \
            ["", "9", "10", "a", "b"]

    def test_leading_zeros_are_deterministic(self):
        assert utils.NiceSort(["node1", "node01"]) == ["node01", "node1"]
        assert utils.NiceSort(["node01", "node1"]) == ["node01", "node1"]

    def test_many_groups(self):
        data = ["a1b1c1d1e1f1g1h1i2", "a1b1c1d1e1f1g1h1i10",
                "a1b1c1d1e1f1g1h1i1"]
        assert utils.NiceSort(data) == ["a1b1c1d1e1f1g1h1i1",
                                        "a1b1c1d1e1f1g1h1i2",
                                        "a1b1c1d1e1f1g1h1i10"]

    def test_key(self):
        items = [{"name": "n10"}, {"name": "n9"}]
        assert utils.NiceSort(items, key=lambda item: item["name"]) == \
            [{"name": "n9"}, {"name": "n10"}]

    def test_unicode_digits_are_text(self):
        assert utils.NiceSort(["x\u0663", "x2"]) == ["x2", "x\u0663"]

    @given(st.lists(st.integers(min_value=0, max_value=10**6), unique=True))
    def test_numbers_sort_numerically(self, numbers):
        names = [f"inst{n}.example.com" for n in numbers]
        random.Random(0).shuffle(names)
        assert utils.NiceSort(names) == \
            [f"inst{n}.example.com" for n in sorted(numbers)]

    @given(st.lists(st.text(alphabet="ab01 .")))
    def test_total_order(self, names):
        once = utils.NiceSort(names)
        assert utils.NiceSort(list(reversed(names))) == once
        assert utils.NiceSort(once) == once


@pytest.mark.parametrize("seq, base, expected", [
    ([], 0, None),
    ([0, 1, 2], 0, None),
    ([0, 1, 3], 0, 2),
    ([1, 2], 0, 0),
    ([5, 6, 8], 5, 7),
    ([11000, 11001], 11000, None),
    ([11001], 11000, 11000),
])
def test_first_free(seq, base, expected):
    assert utils.FirstFree(seq, base=base) == expected


def test_first_free_below_base():
    with pytest.raises(ValueError):
        utils.FirstFree([3, 4], base=5)


class FakeTime:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_timeout_expired():
    clock = FakeTime()
    assert not utils.TimeoutExpired(100.0, 10, _time_fn=clock)
    clock.now = 110.0
    assert not utils.TimeoutExpired(100.0, 10, _time_fn=clock)
    clock.now = 110.5
    assert utils.TimeoutExpired(100.0, 10, _time_fn=clock)


class TestRunningTimeout:
    def test_countdown(self):
        clock = FakeTime()
        timeout = utils.RunningTimeout(10, False, _time_fn=clock)
        assert timeout.Remaining() == 10
        clock.now += 4
        assert timeout.Remaining() == 6
        assert not timeout.Expired()
        clock.now += 10
        assert timeout.Remaining() == 0
        assert timeout.Expired()

    def test_negative_allowed(self):
        clock = FakeTime()
        timeout = utils.RunningTimeout(1, True, _time_fn=clock)
        clock.now += 3
        assert timeout.Remaining() == -2
        assert timeout.Expired()

    def test_none_never_expires(self):
        clock = FakeTime()
        timeout = utils.RunningTimeout(None, False, _time_fn=clock)
        clock.now += 10**9
        assert timeout.Remaining() is None
        assert not timeout.Expired()

    def test_negative_timeout_refused(self):
        with pytest.raises(ValueError):
            utils.RunningTimeout(-1, False)
