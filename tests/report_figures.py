"""Tiny run sets for the figure and HTML tests, with LIBERO's real task names, and a check that
no two texts of a drawn figure overlap."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

from report_helpers import TaskSpec, make_run

SPATIAL = ["pick_up_the_black_bowl_between_the_plate_and_the_ramekin_and_place_it_on_the_plate",
           "pick_up_the_black_bowl_next_to_the_ramekin_and_place_it_on_the_plate",
           "pick_up_the_black_bowl_in_the_top_drawer_of_the_wooden_cabinet_and_place_it_on_the_plate"]
GOAL = ["open_the_middle_drawer_of_the_cabinet", "put_the_bowl_on_the_stove", "turn_on_the_stove"]
LONG = ["LIVING_ROOM_SCENE2_put_both_the_alphabet_soup_and_the_tomato_sauce_in_the_basket",
        "KITCHEN_SCENE3_turn_on_the_stove_and_put_the_moka_pot_on_it",
        "KITCHEN_SCENE8_put_both_moka_pots_on_the_stove"]
BRIDGE = ["put_carrot_on_plate", "put_spoon_on_towel", "put_eggplant_in_basket"]
NAMES = {"libero_spatial": SPATIAL, "libero_goal": GOAL, "libero_10": LONG, "simpler_bridge": BRIDGE}
METHODS = ["fastv", "sparsevlm", "divprune", "vla-pruner"]
RETENTIONS = [0.5, 0.25, 0.125, 0.0625]


def _tasks(names: list[str], quality: float, latency: float, n: int = 6) -> list[TaskSpec]:
    return [TaskSpec(name, max(0, min(n, round(n * quality) - (i % 2))), n, latency_ms=latency,
                     jitter=4.0, calls_per_episode=2) for i, name in enumerate(names)]


def grid_runs(root: Path) -> Path:
    """LIBERO-Spatial: vanilla + 4 methods x 4 retentions (16 points); LIBERO-Long,
    LIBERO-Goal and SIMPLER Bridge: vanilla + FastV at 50%. Written in a scrambled order."""
    for suite in ("simpler_bridge", "libero_10", "libero_goal", "libero_spatial"):
        make_run(root, f"none-{suite}", model="openvla-oft", pruner="none", suite=suite,
                 tasks=_tasks(NAMES[suite], 0.9, 100.0))
        grid = [(m, r) for m in METHODS for r in RETENTIONS] if suite == "libero_spatial" \
            else [("fastv", 0.5)]
        for j, (method, ret) in enumerate(grid):
            make_run(root, f"{method}-{ret}-{suite}", model="openvla-oft", pruner=method,
                     suite=suite, retention=ret,
                     tasks=_tasks(NAMES[suite], 0.4 + ret + 0.02 * (j % 4), 40 + 100 * ret + j))
    return root


def overlapping_texts(fig) -> list[tuple[str, str]]:
    """Pairs of visible, non-empty texts of a drawn figure whose boxes overlap (> 1 px²)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [fig._suptitle] if fig._suptitle else []
    for leg in fig.legends:
        texts += leg.get_texts()
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        if ax.get_legend():
            texts += ax.get_legend().get_texts()
        for axis, (lo, hi) in ((ax.xaxis, sorted(ax.get_xlim())), (ax.yaxis, sorted(ax.get_ylim()))):
            for tick in axis.get_major_ticks():
                if lo <= tick.get_loc() <= hi:  # ticks outside the view are not drawn
                    texts += [tick.label1, tick.label2]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts
             if t.get_visible() and t.get_text().strip()]
    out = []
    for (a, ba), (b, bb) in combinations(boxes, 2):
        w = min(ba.x1, bb.x1) - max(ba.x0, bb.x0)
        h = min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
        if w > 0 and h > 0 and w * h > 1:
            out.append((a, b))
    return out
