"""The cache of configuration-only master answers (``/2/info``)."""

from __future__ import annotations

import os

from ganeti.rapi import baserlib


def _Files(tmp_path):
    config = tmp_path / "config.data"
    config.write_text("{}")
    sock = tmp_path / "socket"
    sock.write_text("")
    return config, sock


def _Counter():
    calls = []

    def _Fetch():
        calls.append(1)
        return {"n": len(calls)}
    return calls, _Fetch


def test_answer_is_kept_while_nothing_changes(tmp_path):
    config, sock = _Files(tmp_path)
    cache = baserlib.ConfigAnswerCache(str(config), str(sock), max_age=3600)
    calls, fetch = _Counter()
    assert cache.Get("info", fetch) == {"n": 1}
    assert cache.Get("info", fetch) == {"n": 1}
    assert len(calls) == 1
    # Another name is another answer
    assert cache.Get("other", fetch) == {"n": 2}


def test_new_config_file_is_seen_at_once(tmp_path):
    config, sock = _Files(tmp_path)
    cache = baserlib.ConfigAnswerCache(str(config), str(sock), max_age=3600)
    calls, fetch = _Counter()
    cache.Get("info", fetch)
    # What the master does on every change: a new file renamed over the old
    new = tmp_path / "config.data.new"
    new.write_text("{}")
    os.replace(new, config)
    assert cache.Get("info", fetch) == {"n": 2}
    assert cache.Get("info", fetch) == {"n": 2}


def test_restarted_master_is_asked_again(tmp_path):
    config, sock = _Files(tmp_path)
    cache = baserlib.ConfigAnswerCache(str(config), str(sock), max_age=3600)
    calls, fetch = _Counter()
    cache.Get("info", fetch)
    sock.unlink()
    # No socket: no caching at all, the master's error goes to the client
    assert cache.Get("info", fetch) == {"n": 2}
    assert cache.Get("info", fetch) == {"n": 3}
    other = tmp_path / "socket.new"
    other.write_text("")
    os.replace(other, sock)
    assert cache.Get("info", fetch) == {"n": 4}
    assert cache.Get("info", fetch) == {"n": 4}


def test_answers_expire(tmp_path):
    config, sock = _Files(tmp_path)
    cache = baserlib.ConfigAnswerCache(str(config), str(sock), max_age=0)
    calls, fetch = _Counter()
    cache.Get("info", fetch)
    cache.Get("info", fetch)
    assert len(calls) == 2


def test_errors_are_not_cached(tmp_path):
    config, sock = _Files(tmp_path)
    cache = baserlib.ConfigAnswerCache(str(config), str(sock), max_age=3600)
    calls, fetch = _Counter()

    def _Fail():
        raise OSError("master gone")
    try:
        cache.Get("info", _Fail)
    except OSError:
        pass
    assert cache.Get("info", fetch) == {"n": 1}
