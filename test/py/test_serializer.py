"""Tests for ganeti.serializer."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ganeti import errors, serializer, utils

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25)


class TestJson:
    def test_format(self):
        data = {"b": [1, 2.5, None, True], "a": {"z": "x", "y": "\u00e9"}}
        text = serializer.DumpJson(data)
        assert text == '{"a":{"y":"\\u00e9","z":"x"},"b":[1,2.5,null,true]}\n'
        assert serializer.Dump is serializer.DumpJson
        assert serializer.DumpJsonBytes(data) == text.encode("ascii")

    def test_stable(self):
        first = {"x": 1, "a": 2, "m": {"q": 1, "b": 2}}
        second = {"m": {"b": 2, "q": 1}, "a": 2, "x": 1}
        assert serializer.DumpJson(first) == serializer.DumpJson(second)

    def test_tuples_become_lists(self):
        assert serializer.LoadJson(serializer.DumpJson((1, (2, 3)))) == \
            [1, [2, 3]]

    @pytest.mark.parametrize("value", [{1, 2}, object(), b"bytes",
                                       {(1, 2): 3}])
    def test_unserialisable(self, value):
        with pytest.raises(TypeError):
            serializer.DumpJson(value)

    @pytest.mark.parametrize("value", [float("nan"), float("inf"),
                                       [float("-inf")]])
    def test_no_nan(self, value):
        with pytest.raises(ValueError):
            serializer.DumpJson(value)

    @given(json_values)
    def test_round_trip(self, data):
        text = serializer.DumpJson(data)
        assert text.endswith("\n")
        assert serializer.LoadJson(text) == data
        assert serializer.LoadJson(text.encode("utf-8")) == data
        assert serializer.LoadJson(serializer.DumpJsonBytes(data)) == data
        # Stable: dumping what we loaded gives the same text
        assert serializer.DumpJson(serializer.LoadJson(text)) == text

    def test_load(self):
        assert serializer.Load is serializer.LoadJson
        assert serializer.LoadJson('{"a": [1, 2]}') == {"a": [1, 2]}
        assert serializer.LoadJson(b' "x" \n') == "x"
        assert serializer.LoadJson(bytearray(b"3")) == 3
        assert serializer.LoadJson('"\\u00e9"') == "\u00e9"

    @pytest.mark.parametrize("text", ["", "{", "{'a': 1}", "[1,]", "NaN",
                                      "[Infinity]", "-Infinity", "nul",
                                      "1 2", b"\xff\xfe", b'"\xc3"'])
    def test_invalid(self, text):
        with pytest.raises(errors.ParseError, match="Invalid JSON"):
            serializer.LoadJson(text)

    @pytest.mark.parametrize("value", [None, 5, ["x"]])
    def test_not_text(self, value):
        with pytest.raises(errors.ParseError):
            serializer.LoadJson(value)



def _Depth(value) -> int:
    """How deep lists and dicts nest in a parsed value (a scalar: 0)."""
    if isinstance(value, list):
        return 1 + max(map(_Depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_Depth, value.values()), default=0)
    return 0


# Strings full of what the depth check must see through
tricky_text = st.text(alphabet='[]{}"\\ ab\u00e9', max_size=8)
tricky_values = st.recursive(
    st.none() | st.integers() | tricky_text,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(tricky_text, children, max_size=4),
    max_leaves=40)


class TestLimits:
    @given(tricky_values, st.integers(min_value=0, max_value=8), st.booleans())
    def test_depth_matches_the_parsed_value(self, data, limit, ascii_only):
        text = json.dumps(data, ensure_ascii=ascii_only)
        deeper = _Depth(data) > limit
        assert serializer.NestedDeeper(text, limit) == deeper
        assert serializer.NestedDeeper(text.encode("utf-8"), limit) == deeper
        if deeper:
            with pytest.raises(errors.ParseError, match="nested deeper than"):
                serializer.LoadJson(text, max_depth=limit)
        else:
            assert serializer.LoadJson(text, max_depth=limit) == data

    @pytest.mark.parametrize("text", [
        "[" * 50000, "[" * 50000 + "]" * 50000, '{"a":' * 20000,
        '["\\\\"' + ",[" * 129 + "]" * 129 + "]",
    ])
    def test_too_deep(self, text):
        for data in (text, text.encode("ascii")):
            with pytest.raises(errors.ParseError,
                               match=f"deeper than {serializer.MAX_DEPTH} levels"):
                serializer.LoadJson(data)

    def test_default_depth(self):
        depth = serializer.MAX_DEPTH
        assert serializer.LoadJson("[" * depth + "]" * depth) is not None
        assert serializer.LoadJson('["' + "[" * 1000 + '"]') == ["[" * 1000]
        assert serializer.LoadJson('["\\\\", "\\"[[["]' + " " * 200) == ["\\", '"[[[']
        with pytest.raises(errors.ParseError):
            serializer.LoadJson("[" * (depth + 1) + "]" * (depth + 1))

    def test_no_depth_limit_still_a_parse_error(self):
        # Without the limit, the decoder's recursion limit refuses it
        with pytest.raises(errors.ParseError, match="nested too deeply"):
            serializer.LoadJson("[" * 100000 + "]" * 100000, max_depth=None)

    def test_size_limit(self):
        assert serializer.LoadJson(b"[1, 2]", max_size=6) == [1, 2]
        with pytest.raises(errors.ParseError, match="7 bytes exceed the limit of 6"):
            serializer.LoadJson(b"[1, 22]", max_size=6)

    def test_unbalanced_brackets(self):
        # Refused by the parser, whatever the depth check says
        for text in ("[1" + "]" * 200, "]" * 200, "[" * 10 + "}" * 10):
            with pytest.raises(errors.ParseError):
                serializer.LoadJson(text)


class TestSigned:
    KEY = "secret-key"

    def test_structure(self):
        text = serializer.DumpSignedJson({"q": 1}, self.KEY, salt="1249637704")
        signed = json.loads(text)
        assert set(signed) == {"msg", "salt", "hmac"}
        assert signed["msg"] == '{"q":1}\n'
        assert signed["salt"] == "1249637704"
        assert signed["hmac"] == utils.Sha1Hmac(self.KEY, signed["msg"],
                                                salt="1249637704")

    def test_round_trip(self):
        text = serializer.DumpSignedJson([1, "two"], self.KEY, salt="s")
        assert serializer.LoadSignedJson(text, self.KEY) == ([1, "two"], "s")
        assert serializer.LoadSignedJson(text.encode(), self.KEY.encode()) == \
            ([1, "two"], "s")
        assert serializer.DumpSigned is serializer.DumpSignedJson
        assert serializer.LoadSigned is serializer.LoadSignedJson

    def test_no_salt(self):
        text = serializer.DumpSignedJson("data", self.KEY)
        assert json.loads(text)["salt"] == ""
        assert serializer.LoadSignedJson(text, self.KEY) == ("data", "")

    def test_wrong_key(self):
        text = serializer.DumpSignedJson("data", self.KEY, salt="s")
        with pytest.raises(errors.SignatureError, match="Invalid signature"):
            serializer.LoadSignedJson(text, "other-key")

    @pytest.mark.parametrize("field, value", [
        ("msg", '{"q":2}\n'),
        ("salt", "t"),
        ("hmac", "0" * 40),
        ("hmac", ""),
    ])
    def test_tampering(self, field, value):
        signed = json.loads(serializer.DumpSignedJson({"q": 1}, self.KEY,
                                                      salt="s"))
        signed[field] = value
        with pytest.raises(errors.SignatureError):
            serializer.LoadSignedJson(json.dumps(signed), self.KEY)

    @pytest.mark.parametrize("field", ["msg", "salt", "hmac"])
    def test_missing_field(self, field):
        signed = json.loads(serializer.DumpSignedJson(1, self.KEY, salt="s"))
        del signed[field]
        with pytest.raises(errors.SignatureError, match=field):
            serializer.LoadSignedJson(json.dumps(signed), self.KEY)

    @pytest.mark.parametrize("field", ["msg", "salt", "hmac", "key_selector"])
    def test_wrong_field_type(self, field):
        signed = json.loads(serializer.DumpSignedJson(1, self.KEY, salt="s"))
        signed[field] = 12
        with pytest.raises(errors.SignatureError):
            serializer.LoadSignedJson(json.dumps(signed), self.KEY)

    @pytest.mark.parametrize("text", ["not json", "[1, 2]", '"msg"', "null"])
    def test_not_a_signed_message(self, text):
        with pytest.raises(errors.SignatureError):
            serializer.LoadSignedJson(text, self.KEY)

    def test_signed_invalid_json_payload(self):
        msg = "{broken"
        text = json.dumps({"msg": msg, "salt": "",
                           "hmac": utils.Sha1Hmac(self.KEY, msg)})
        with pytest.raises(errors.SignatureError, match="invalid JSON"):
            serializer.LoadSignedJson(text, self.KEY)

    def test_key_selector(self):
        keys = {"cluster-a": "key-a", "cluster-b": "key-b"}
        text = serializer.DumpSignedJson({"x": 1}, "key-b", salt="s",
                                         key_selector="cluster-b")
        signed = json.loads(text)
        assert signed["key_selector"] == "cluster-b"
        # The selector is covered by the signature, after the salt
        assert signed["hmac"] == utils.Sha1Hmac("key-b", signed["msg"],
                                                salt="scluster-b")
        assert serializer.LoadSignedJson(text, keys.get) == ({"x": 1}, "s")

    def test_key_selector_tampered(self):
        keys = {"cluster-a": "same", "cluster-b": "same"}
        signed = json.loads(serializer.DumpSignedJson(1, "same", salt="s",
                                                      key_selector="cluster-b"))
        signed["key_selector"] = "cluster-a"
        with pytest.raises(errors.SignatureError):
            serializer.LoadSignedJson(json.dumps(signed), keys.get)

    def test_unknown_key_selector(self):
        text = serializer.DumpSignedJson(1, "k", key_selector="nobody")
        with pytest.raises(errors.SignatureError, match="nobody"):
            serializer.LoadSignedJson(text, {}.get)

    def test_callable_key_without_selector(self):
        seen = []

        def _key(selector):
            seen.append(selector)
            return "k"

        text = serializer.DumpSignedJson(1, "k")
        assert serializer.LoadSignedJson(text, _key) == (1, "")
        assert seen == [None]

    @given(json_values, st.text(), st.binary(min_size=1))
    def test_signed_round_trip(self, data, salt, key):
        text = serializer.DumpSignedJson(data, key, salt=salt)
        assert serializer.LoadSignedJson(text, key) == (data, salt)
