"""Figures read like the papers': suites in their order and names, one marker per method and
one colour per retention, speedup intervals drawn, task names on the per-task axes, captions
inside the files, and no two texts on top of each other."""

from __future__ import annotations

import math

import pytest
from matplotlib.colors import to_hex
from report_figures import LONG, METHODS, RETENTIONS, SPATIAL, grid_runs, overlapping_texts
from report_helpers import TaskSpec, make_run

from vlabench.report import pngmeta
from vlabench.report.figstyle import RC, plt
from vlabench.report.labels import suite_name, suite_order, task_labels
from vlabench.report.plots import (
    make_plots, pareto_figure, retention_figure, tasks_figure,
)
from vlabench.report.runs import RunSet

PAPER_ORDER = ["LIBERO-Spatial", "LIBERO-Goal", "LIBERO-Long", "SIMPLER Bridge (WidowX)"]


@pytest.fixture(scope="module")
def rs(tmp_path_factory):
    return RunSet.load([str(grid_runs(tmp_path_factory.mktemp("grid")))])


@pytest.fixture(autouse=True)
def style():
    with plt().rc_context(RC):
        yield
    plt().close("all")


def test_suites_sort_in_the_papers_order_with_their_names():
    ids = ["simpler_bridge", "libero_90", "libero_10", "zz_custom", "libero_goal",
           "libero_object", "libero_spatial", "simpler_google_vm"]
    assert suite_order(ids) == ["libero_spatial", "libero_object", "libero_goal", "libero_10",
                                "libero_90", "simpler_google_vm", "simpler_bridge", "zz_custom"]
    assert [suite_name(s) for s in ("libero_spatial", "libero_10", "zz_custom")] == \
        ["LIBERO-Spatial", "LIBERO-Long", "zz_custom"]


def test_task_labels_factor_out_shared_words_and_drop_scene_prefixes():
    labels, template = task_labels(dict(enumerate(SPATIAL)))
    assert template == "pick up black bowl … and place it on plate"
    assert labels == {0: "between plate and ramekin", 1: "next to ramekin",
                      2: "in top drawer of wooden\ncabinet"}
    labels, template = task_labels(dict(enumerate(LONG)))
    assert template == "" and labels[2] == "put both moka pots on stove"


def test_task_labels_keep_the_scene_only_where_two_tasks_read_the_same():
    names = {0: "KITCHEN_SCENE1_open_the_top_drawer_of_the_cabinet",
             1: "KITCHEN_SCENE2_open_the_top_drawer_of_the_cabinet",
             2: "LIVING_ROOM_SCENE6_put_the_red_mug_on_the_plate"}
    labels, _ = task_labels(names)
    assert labels == {0: "Kitchen 1: open top drawer of\ncabinet",
                      1: "Kitchen 2: open top drawer of\ncabinet", 2: "put red mug on plate"}


def test_task_labels_stay_distinct_when_cut():
    stem = "pick_up_the_book_and_place_it_in_the_compartment_of_the_caddy_on_the_shelf_number_"
    labels, _ = task_labels({0: stem + "one", 1: stem + "two"}, width=20)
    assert len(set(labels.values())) == 2


def test_pareto_panels_follow_the_papers_suite_order(rs):
    fig, _, caption = pareto_figure(rs, "openvla-oft")
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == PAPER_ORDER
    assert "LIBERO-Spatial, LIBERO-Goal, LIBERO-Long, SIMPLER Bridge (WidowX)" in caption
    fig, _, _ = retention_figure(rs, "openvla-oft")
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == PAPER_ORDER


def _points(ax) -> dict[str, tuple[str, str]]:
    """gid "method|retention" -> (marker, colour) of each plotted point."""
    return {ln.get_gid(): (ln.get_marker(), to_hex(ln.get_color()))
            for ln in ax.lines if ln.get_gid() and "|" in ln.get_gid()}


def test_pareto_has_one_marker_per_method_and_one_colour_per_retention(rs):
    fig, _, _ = pareto_figure(rs, "openvla-oft")
    spatial = _points(fig.axes[0])
    pruned = {g: v for g, v in spatial.items() if not g.startswith("Vanilla")}
    assert len(pruned) == len(METHODS) * len(RETENTIONS) == 16
    by_method: dict[str, set] = {}
    by_ret: dict[str, set] = {}
    for gid, (marker, colour) in pruned.items():
        method, ret = gid.split("|")
        by_method.setdefault(method, set()).add(marker)
        by_ret.setdefault(ret, set()).add(colour)
    assert all(len(m) == 1 for m in by_method.values())
    assert len({next(iter(m)) for m in by_method.values()}) == len(METHODS)
    assert all(len(c) == 1 for c in by_ret.values())
    assert len({next(iter(c)) for c in by_ret.values()}) == len(RETENTIONS)
    assert spatial["Vanilla|None"][0] == "*"
    goal = _points(fig.axes[1])  # the same method and retention look the same in every panel
    assert goal["FastV|0.5"] == spatial["FastV|0.5"]


@pytest.mark.parametrize("unit", ["episode", "call"])
def test_pareto_draws_speedup_intervals_around_each_point(rs, unit):
    rs.ci_unit = unit
    try:
        fig, _, caption = pareto_figure(rs, "openvla-oft")
    finally:
        rs.ci_unit = "episode"
    ax = fig.axes[0]
    with_x = [c for c in ax.containers if c.has_xerr]
    assert len(with_x) == 16  # every pruned run; vanilla has none (its speedup is 1 by definition)
    for c in with_x:
        x = c.lines[0].get_xdata()[0]
        (seg,) = c.lines[2][0].get_segments()  # the horizontal bar
        lo, hi = sorted(p[0] for p in seg)
        # episodes resampled: the grid's calls alternate ±jitter within each episode, so its episode
        # means are constant and the interval is a point; resampling calls it is not
        assert (lo <= x <= hi if unit == "episode" else lo < x < hi) and math.isclose(seg[0][1], seg[1][1])
    assert f"bootstrap interval of the speedup ({unit}s resampled)" in caption


@pytest.mark.parametrize("which", ["pareto", "retention", "tasks"])
def test_no_two_texts_overlap(rs, which):
    fig, _, _ = {"pareto": lambda: pareto_figure(rs, "openvla-oft"),
                 "retention": lambda: retention_figure(rs, "openvla-oft"),
                 "tasks": lambda: tasks_figure(rs, "openvla-oft", "libero_spatial")}[which]()
    assert overlapping_texts(fig) == []


def test_task_figure_has_a_panel_per_method_and_task_names_on_the_axis(rs):
    fig, title, caption = tasks_figure(rs, "openvla-oft", "libero_spatial")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["DivPrune", "FastV", "SparseVLM", "VLA-Pruner"]
    ticks = [t.get_text() for t in axes[0].get_yticklabels()]
    assert ticks == ["between plate and ramekin", "next to ramekin", "in top drawer of wooden\ncabinet"]
    assert axes[0].get_ylabel() == "pick up black bowl … and place it on plate"
    bars = [p for p in axes[1].patches if p.get_gid()]
    assert len(bars) == len(RETENTIONS) * len(SPATIAL)
    assert len({to_hex(p.get_facecolor()) for p in bars}) == len(RETENTIONS)
    assert axes[0].collections  # vanilla's per-task ticks
    assert title.endswith("LIBERO-Spatial: success rate per task") and "vanilla" in caption


def test_task_figure_of_baselines_only_shows_them(tmp_path):
    for name in ("vanilla-a", "vanilla-b"):   # e.g. two pruner=none runs and no pruned one
        make_run(tmp_path, name, model="openvla-oft", pruner="none", suite="libero_spatial",
                 tasks=[TaskSpec(n, 3, 6, latency_ms=100.0) for n in SPATIAL])
    fig, title, _ = tasks_figure(RunSet.load([str(tmp_path)]), "openvla-oft", "libero_spatial")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 1 and len([p for p in axes[0].patches if p.get_gid()]) == 2 * len(SPATIAL)


def test_many_tasks_become_a_heat_map_with_readable_labels(tmp_path):
    names = [f"KITCHEN_SCENE{i % 5}_{('open', 'close', 'push')[i % 3]}_the_top_drawer_{i}"
             for i in range(30)]
    for pruner, ret in (("none", None), ("fastv", 0.5), ("vla-pruner", 0.25)):
        make_run(tmp_path, f"{pruner}-90", model="openvla-oft", pruner=pruner, suite="libero_90",
                 retention=ret, tasks=[TaskSpec(n, 1, 2) for n in names])
    fig, _, _ = tasks_figure(RunSet.load([str(tmp_path)]), "openvla-oft", "libero_90")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Vanilla", "FastV (50%)",
                                                            "VLA-Pruner (25%)"]
    assert ax.get_yticklabels()[4].get_text() == "close top drawer 4"
    assert overlapping_texts(fig) == []


def test_make_plots_store_the_caption_in_each_png(tmp_path):
    root = tmp_path / "runs"
    for pruner, ret, lat in (("none", None, 100.0), ("fastv", 0.25, 60.0)):
        for suite in ("libero_goal", "libero_spatial"):
            make_run(root, f"{pruner}-{suite}", model="m", pruner=pruner, suite=suite,
                     retention=ret, tasks=[TaskSpec("turn_on_the_stove", 3, 4, latency_ms=lat)])
    paths = make_plots(RunSet.load([str(root)]), tmp_path / "plots")
    assert [p.stem for p in paths] == ["pareto-m", "sr_vs_retention-m", "tasks-m-libero_spatial",
                                       "tasks-m-libero_goal"]
    for p in paths:
        meta = pngmeta.text(p.read_bytes())
        assert meta["Title"] and len(meta["Description"]) > 60
        assert p.with_suffix(".svg").read_text().count(meta["Title"].split(":")[0]) >= 1
    assert "LIBERO-Spatial, LIBERO-Goal" in pngmeta.text(paths[0].read_bytes())["Description"]


def test_the_overlap_check_finds_labels_drawn_on_top_of_each_other():
    fig, ax = plt().subplots()
    ax.annotate("FastV (12.5%)", (1.0, 1.0), xytext=(4, 4), textcoords="offset points")
    ax.annotate("DivPrune (12.5%)", (1.01, 1.0), xytext=(4, 4), textcoords="offset points")
    ax.set(xlim=(0, 2), ylim=(0, 2))
    assert overlapping_texts(fig) == [("FastV (12.5%)", "DivPrune (12.5%)")]
