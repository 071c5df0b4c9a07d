"""Issue 23 item 11: every figure type lays out cleanly (no text box on another, the title clear
of the legend and the panels, no panel squeezed, a sane rendered size); a policy without pruning
(the oracle) has no Pareto/retention figure; a method without a fixed ratio stands at its measured
share of kept tokens (or the caption says why not); --with-reference draws the papers' points."""

from __future__ import annotations

import struct

import pytest
from report_figures import LONG, grid_runs, overlapping_texts
from report_helpers import TaskSpec, make_run, suite_tasks

from vlabench.report.figstyle import DPI, MIN_PANEL_IN, RC, plt
from vlabench.report.plots import (
    make_plots,
    pareto_figure,
    retention_figure,
    tasks_figure,
)
from vlabench.report.reference import Reference
from vlabench.report.runs import RunSet

KEPT = 190   # SpecPrune's calls keep 190 of 512 tokens: 37.1%
MANY = [f"KITCHEN_SCENE{i}_put_the_black_bowl_number_{i}_on_the_plate" for i in range(30)]


@pytest.fixture(scope="module")
def rs(tmp_path_factory):
    root = grid_runs(tmp_path_factory.mktemp("layout"))
    make_run(root, "specprune-spatial", model="openvla-oft", pruner="specprune", suite="libero_spatial",
             tasks=suite_tasks(4, 6, 3, latency_ms=50.0, tokens_kept=KEPT))
    make_run(root, "vla-cache-spatial", model="openvla-oft", pruner="vla-cache", suite="libero_spatial",
             tasks=suite_tasks(5, 6, 3, latency_ms=70.0, tokens_in="", tokens_kept=""))
    make_run(root, "oracle-object", model="oracle", pruner="none", suite="libero_object",
             tasks=[TaskSpec(n, 2, 3) for n in LONG])
    for pruner, ret in (("none", None), ("fastv", 0.5)):   # one narrow panel, 30 tasks: a heat map
        make_run(root, f"{pruner}-l90", model="openvla", pruner=pruner, suite="libero_90", retention=ret,
                 tasks=[TaskSpec(n, 1 + i % 3, 3) for i, n in enumerate(MANY)])
    return RunSet.load([str(root)])


@pytest.fixture(autouse=True)
def style():
    with plt().rc_context(RC):
        yield
    plt().close("all")


def _figures(rs, ref=None):
    out = []
    for model in rs.models():
        out += [("pareto", model, pareto_figure(rs, model, ref)), ("retention", model, retention_figure(rs, model, ref))]
        for suite in sorted({r.suite for r in rs.runs if r.model == model}):
            out.append((f"tasks {suite}", model, tasks_figure(rs, model, suite)))
    return [(kind, model, made) for kind, model, made in out if made is not None]


def layout_problems(fig) -> list[str]:
    """What is wrong with a drawn figure's layout (empty: nothing)."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    problems = [f"texts overlap: {a!r} / {b!r}" for a, b in overlapping_texts(fig)]
    title = fig._suptitle.get_window_extent(r)
    for leg in fig.legends:
        if title.overlaps(leg.get_window_extent(r)):
            problems.append("title on the legend")
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        if title.overlaps(ax.get_tightbbox(r)):
            problems.append(f"title on panel {ax.get_title()!r}")
        width = ax.get_position().width * fig.get_figwidth()
        if ax.get_subplotspec() is not None and width < MIN_PANEL_IN - 0.01:
            problems.append(f"panel {ax.get_title()!r} squeezed to {width:.2f} in")
    return problems


def test_every_figure_type_lays_out_cleanly(rs):
    figs = _figures(rs, Reference.load())
    kinds = {k.split()[0] for k, _, _ in figs}
    assert kinds == {"pareto", "retention", "tasks"}
    assert any(k == "tasks libero_90" for k, _, _ in figs)   # the heat map
    for kind, model, (fig, title, _) in figs:
        assert fig._suptitle.get_text() == title
        assert layout_problems(fig) == [], (kind, model)


def test_rendered_files_have_a_sane_size(rs, tmp_path):
    paths = make_plots(rs, tmp_path, Reference.load())
    assert len(paths) >= 8
    for p in paths:
        width, height = struct.unpack(">II", p.read_bytes()[16:24])   # the PNG's IHDR
        assert 3 * DPI <= width <= 20 * DPI and 1.5 * DPI <= height <= 20 * DPI, (p.name, width, height)
        assert p.with_suffix(".svg").is_file()


def test_a_policy_without_pruning_has_no_tradeoff_figures(rs, tmp_path):
    assert pareto_figure(rs, "oracle") is None and retention_figure(rs, "oracle") is None
    names = {p.name for p in make_plots(rs, tmp_path)}
    assert "tasks-oracle-libero_object.png" in names
    assert not any(n.startswith(("pareto-oracle", "sr_vs_retention-oracle")) for n in names)


def test_a_method_without_a_fixed_ratio_stands_at_its_measured_share(rs):
    fig, _, caption = retention_figure(rs, "openvla-oft")
    lines = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_gid() == "SpecPrune-VLA"]
    assert len(lines) == 1
    x = lines[0].get_xdata()[0]
    assert 100 * KEPT / 512 * 0.9 < x < 100 * KEPT / 512 * 1.1   # within the side-by-side dodge
    assert "SpecPrune-VLA (hollow, dotted) stand at the share of visual tokens their calls kept" in caption
    assert "Not shown: VLA-Cache, which has no fixed ratio and whose calls record no kept-token counts" in caption


def test_with_reference_the_papers_points_stand_beside_ours(rs):
    ref = Reference.load()
    fig, _, caption = pareto_figure(rs, "openvla-oft", ref)
    spatial = next(ax for ax in fig.axes if ax.get_title() == "LIBERO-Spatial")
    paper = {ln.get_gid(): (ln.get_xdata()[0], ln.get_ydata()[0]) for ln in spatial.get_lines()
             if str(ln.get_gid()).startswith("paper|")}
    fastv = ref.get(next(k for k in ref.values if (k.paper, k.table, k.method, k.model, k.retention)
                         == ("vla-pruner", "1", "fastv", "openvla-oft", 0.5)), "libero_spatial")
    assert paper["paper|FastV|0.5"][1] == fastv["success_rate"]
    assert "published points" in caption
    plain = pareto_figure(rs, "openvla-oft")[0]
    assert not any(str(ln.get_gid()).startswith("paper|") for ax in plain.axes for ln in ax.get_lines())
