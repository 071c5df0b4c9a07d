"""Paper-vs-code readings: the setting, the registry of points, and the README table."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlabench.core.errors import ConfigError
from vlabench.core.readings import READINGS, reading_of
from vlabench.pruners.readings import readings_markdown, readings_rows

README = Path(__file__).resolve().parents[1] / "README.md"


def test_reading_defaults_to_code_and_refuses_other_values():
    assert reading_of(None) == "code"
    assert reading_of({"reading": "paper"}) == "paper"
    with pytest.raises(ConfigError, match="valid: code, paper"):
        reading_of({"reading": "papers"})


def test_every_reading_names_both_sides_and_a_valid_default():
    rows = readings_rows()
    for name, r in rows:
        assert r.default in READINGS, (name, r.point)
        assert r.point and r.paper and r.code and r.evidence, (name, r.point)
    points = [(name, r.point) for name, r in rows]
    assert len(points) == len(set(points)), "a point is listed twice"


def test_readme_readings_table_is_generated_from_the_code():
    text = README.read_text()
    start, end = "<!-- readings:start -->\n", "<!-- readings:end -->"
    assert start in text and end in text
    table = text.split(start, 1)[1].split(end, 1)[0]
    assert table == readings_markdown(), (
        "README readings table is stale: regenerate it with `vlabench list --readings --markdown`")
