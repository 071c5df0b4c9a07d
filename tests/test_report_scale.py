"""The report at paper-table scale stays exact: the one-pass calls/episodes loader (csvframe) gives
the tables of the strict row parser, the cached and chunked bootstrap the draws of the original
one, and the fast path refuses exactly what the strict parser refuses (benchmark:
scripts/fabricate_grid.py)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from vlabench.core.schema import CALL_COLUMNS
from vlabench.metrics import stats
from vlabench.records.files import RecordsError
from vlabench.report import build, csvframe, runs

ROOT = Path(__file__).resolve().parents[1]


def _fabricate():
    spec = importlib.util.spec_from_file_location("fabricate_grid", ROOT / "scripts" / "fabricate_grid.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    fab = _fabricate()
    rng = np.random.default_rng(3)
    for suite in ("libero_spatial", "libero_goal"):
        for pruner, retention in [("none", None), ("fastv", 0.5), ("fastv", 0.25), ("specprune", None)]:
            fab.write_run(root, pruner, retention, suite, episodes=3, calls_per_episode=7, rng=rng)
    return root


def _exact(monkeypatch):
    monkeypatch.setattr(runs, "read_frame", lambda *a, **k: None)


@pytest.mark.parametrize("fmt", ["md", "json", "csv"])
def test_the_fast_loader_gives_the_tables_of_the_exact_parser(grid, monkeypatch, fmt):
    fast = build.report([str(grid)], fmt, plots=False)
    _exact(monkeypatch)
    assert build.report([str(grid)], fmt, plots=False) == fast
    assert "fastv" in fast.lower() and "specprune" in fast.lower().replace("-", "")


def test_the_fast_loader_reads_the_same_numbers(grid, monkeypatch):
    run_dir = next(grid.glob("*fastv*"))
    data = (run_dir / "calls.csv").read_bytes()
    fast = runs._load_calls(run_dir / "calls.csv", data)
    _exact(monkeypatch)
    exact = runs._load_calls(run_dir / "calls.csv", data)
    assert list(fast.columns) == list(exact.columns)
    for c in runs._NUM_CALLS:
        a, b = fast[c].to_numpy(float), exact[c].to_numpy(float)
        assert np.array_equal(a.view(np.int64), b.view(np.int64)), c   # bit for bit
    assert list(fast["source"].astype(str)) == list(exact["source"])


def _calls(tmp_path: Path, body: str, header: list[str] = CALL_COLUMNS) -> tuple[Path, bytes]:
    p = tmp_path / "calls.csv"
    p.write_text(",".join(header) + "\n" + body)
    return p, p.read_bytes()


def _row(**cells) -> str:
    base = {"task_id": 0, "episode": 0, "call": 0, "step": 0, "source": "model", "warmup": 0,
            "lat_total_ms": 100.5, "tokens_in": 512, "tokens_kept": 256, "flops": 1e12}
    base.update(cells)
    return ",".join(str(base.get(c, "")) for c in CALL_COLUMNS) + "\n"


def test_torn_short_long_and_blank_lines_leave_the_fast_path(tmp_path):
    good = _row()
    for body in (good + good[:-9] + "\n", good + good[:-1] + ",x\n", good + "\n" + good, good + good[:-1]):
        p, data = _calls(tmp_path, body)
        assert csvframe.read_frame(p, data, CALL_COLUMNS, runs._TEXT_CALLS) is None, body
    p, data = _calls(tmp_path, good + good)
    assert len(csvframe.read_frame(p, data, CALL_COLUMNS, runs._TEXT_CALLS)) == 2


def test_the_exact_parser_still_names_the_line(tmp_path):
    good = _row()
    p, data = _calls(tmp_path, good + good[:-9] + "\n")
    with pytest.raises(RecordsError, match=r"calls.csv:3: expected \d+ fields"):
        runs._load_calls(p, data)
    p, data = _calls(tmp_path, good + _row(lat_total_ms="fast"))
    with pytest.raises(RecordsError, match=r"calls.csv:3: column lat_total_ms has non-numeric value 'fast'"):
        runs._load_calls(p, data)
    p, data = _calls(tmp_path, good, header=CALL_COLUMNS[::-1])
    with pytest.raises(RecordsError, match="expected"):
        runs._load_calls(p, data)
    p = tmp_path / "calls.csv"
    p.write_bytes(b"\xff\xfe" + data)
    with pytest.raises(RecordsError, match="not UTF-8"):
        runs._load_calls(p, p.read_bytes())


def test_an_older_layout_reads_with_empty_new_columns(tmp_path):
    older = CALL_COLUMNS[:CALL_COLUMNS.index("mem_peak_mb")]   # a calls.csv from before the memory columns
    row = {"task_id": 1, "episode": 2, "source": "model", "warmup": 0, "lat_total_ms": 9.25}
    p, data = _calls(tmp_path, ",".join(str(row.get(c, "")) for c in older) + "\n", header=older)
    df = runs._load_calls(p, data)
    assert df["lat_total_ms"].tolist() == [9.25] and df["mem_peak_mb"].tolist() == [""]


def test_quoted_cells_take_the_exact_parser(tmp_path):
    p, data = _calls(tmp_path, _row(mode='"a,b"'))
    assert csvframe.read_frame(p, data, CALL_COLUMNS, runs._TEXT_CALLS) is None
    assert runs._load_calls(p, data)["lat_total_ms"].tolist() == [100.5]


def _legacy_interval(samples, statistic, n_boot=1000, confidence=0.95, seed=0):
    """The bootstrap before the cache: 4M indices per draw, every sample drawn afresh."""
    rng = np.random.default_rng(seed)
    means = []
    for a in (np.asarray(s, dtype=float) for s in samples):
        out, step = np.empty(n_boot), max(1, 4_000_000 // a.size)
        for i in range(0, n_boot, step):
            k = min(step, n_boot - i)
            out[i:i + k] = a[rng.integers(0, a.size, (k, a.size))].mean(axis=1)
        means.append(out)
    lo, hi = np.quantile(np.asarray(statistic(means), dtype=float), [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


@pytest.mark.parametrize("n", [1, 2, 7, 333, 4001, 10000, 70001])
def test_the_cached_chunked_bootstrap_is_the_original_bit_for_bit(n):
    g = np.random.default_rng(n)
    base, run = g.normal(100, 5, 10000), g.normal(60, 5, n)
    other = g.normal(70, 3, max(1, n // 3))
    for samples, f in (([base, run], stats.ratio_of_means),
                       ([base, run, base[:501], other], stats.mean_of_ratios)):
        want = _legacy_interval(samples, f)
        assert stats.bootstrap_interval(samples, f) == want   # first: fills the cache
        assert stats.bootstrap_interval(samples, f) == want   # again: from the cache
    assert stats.bootstrap_interval([base, other], stats.ratio_of_means, seed=1) == \
        _legacy_interval([base, other], stats.ratio_of_means, seed=1)


def test_the_cache_keys_on_content_not_identity():
    a = np.linspace(1, 2, 500)
    first = stats.bootstrap_interval([a, a * 0.5], stats.ratio_of_means)
    a[0] = 50.0   # the same array object, other numbers
    second = stats.bootstrap_interval([a, a * 0.5], stats.ratio_of_means)
    assert second == _legacy_interval([a, a * 0.5], stats.ratio_of_means) and not math.isclose(first[1], second[1])


def test_the_call_count_check_is_one_pass_and_still_names_a_lost_row(grid, monkeypatch, tmp_path):
    import shutil

    run_dir = next(grid.glob("*fastv*"))

    def slow(*a, **k):
        raise AssertionError("the row-by-row check ran on a valid run")

    monkeypatch.setattr(runs, "check_call_counts", slow)
    runs.load_run(run_dir)
    monkeypatch.undo()
    broken = tmp_path / run_dir.name
    shutil.copytree(run_dir, broken)
    man = json.loads((broken / "manifest.json").read_text())
    for key in ("records", "seal"):   # an unsealed manifest without digests: the counts must catch it
        man.pop(key)
    (broken / "manifest.json").write_text(json.dumps(man))
    lines = (broken / "calls.csv").read_text().splitlines(keepends=True)
    (broken / "calls.csv").write_text("".join(lines[:-1]))
    with pytest.raises(RecordsError, match=r"has 6 rows for task 9 episode 2 but episodes.csv records policy_calls=7"):
        runs.load_run(broken)
