"""Simulator chatter stays off the terminal; half-built render contexts' destructor errors are
dropped, every other unraisable exception still reaches the previous hook."""

from __future__ import annotations

import gc
import logging
import sys

import pytest

from vlabench.suites import chatter


def test_captured_prints_go_to_the_sim_log(capsys, caplog):
    with caplog.at_level(logging.DEBUG, logger="vlabench.sim"):
        with chatter.captured("libero"):
            print("[info] using task orders [0, 1]")
    assert capsys.readouterr().out == ""
    assert "libero: [info] using task orders [0, 1]" in caplog.text


class MjRenderContext:          # the name robosuite's class has
    def __del__(self):
        self.con.free()         # AttributeError: __init__ never set `con`


class Other:
    def __del__(self):
        raise AttributeError("a real bug")


@pytest.fixture
def seen(monkeypatch):
    got = []
    monkeypatch.setattr(chatter, "_installed", False)
    monkeypatch.setattr(sys, "unraisablehook", lambda u: got.append(u.exc_value))
    chatter.ignore_half_built_contexts()
    return got


def test_half_built_render_context_destructor_is_silent(seen):
    MjRenderContext()
    gc.collect()
    assert seen == []


def test_other_destructor_errors_still_reported(seen):
    Other()
    gc.collect()
    assert len(seen) == 1 and "a real bug" in str(seen[0])
