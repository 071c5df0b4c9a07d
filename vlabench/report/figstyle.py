"""The look shared by the report's figures: one marker per method, one colour per retention,
panel grids, and saving a figure with its caption.

A method's marker and a retention's colour are fixed per model over all of its figures, so a
reader learns them once. Vanilla is a black star; a method without a retention setting is grey.
The caption travels inside the files (PNG `Description` text chunk, SVG metadata), where the
HTML page reads it.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlabench.records.files import atomic_write_bytes, make_dirs
from vlabench.report.grid import method_label
from vlabench.report.runs import Run

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "d", "8", "H", "1", "2"]
VANILLA = {"marker": "*", "color": "black"}
NO_RETENTION = "0.45"
RC = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
      "xtick.labelsize": 8, "ytick.labelsize": 8, "figure.titlesize": 11}
DPI = 200           # PNG pixels per inch; the HTML page shows them at half size (100 per inch)


def plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def method_key(run: Run) -> str:
    """A method without its retention ("VLA-Pruner", "SpecPrune-VLA [tech1]")."""
    return method_label(run.method._replace(retention=None))


def retention_label(retention: float | None) -> str:
    return "no fixed ratio" if retention is None else f"{100 * retention:g}%"


@dataclass
class Styles:
    """Marker per method key, colour per retention, for one model's runs."""

    markers: dict[str, str]
    colours: dict[float | None, Any]

    @classmethod
    def of(cls, runs: list[Run]) -> Styles:
        methods = sorted({method_key(r) for r in runs if r.pruner != "none"})
        rets = sorted({r.retention for r in runs if r.retention is not None}, reverse=True)
        cmap = plt().get_cmap("viridis")
        colours: dict[float | None, Any] = {
            ret: cmap(0.05 + 0.85 * i / max(1, len(rets) - 1)) for i, ret in enumerate(rets)}
        if any(r.pruner != "none" and r.retention is None for r in runs):
            colours[None] = NO_RETENTION
        return cls({m: MARKERS[i % len(MARKERS)] for i, m in enumerate(methods)}, colours)

    def marker(self, run: Run) -> str:
        return VANILLA["marker"] if run.pruner == "none" else self.markers[method_key(run)]

    def colour(self, run: Run) -> Any:
        return VANILLA["color"] if run.pruner == "none" else self.colours[run.retention]

    def legend_handles(self, with_vanilla: bool = True, markers: bool = True
                       ) -> tuple[list[Any], list[str], list[int]]:
        """Handles and labels of a method (marker) and retention (colour) legend, and the
        indices of its heading entries."""
        from matplotlib.lines import Line2D

        def blank() -> Any:
            return Line2D([], [], ls="", marker="")

        handles: list[Any] = []
        labels: list[str] = []
        heads: list[int] = []
        if markers:
            heads.append(0)
            handles.append(blank())
            labels.append("Method (marker)")
            if with_vanilla:
                handles.append(Line2D([], [], ls="", ms=9, mec="black", **VANILLA))
                labels.append("Vanilla")
            for m, mk in self.markers.items():
                handles.append(Line2D([], [], ls="", marker=mk, ms=7, color="0.75", mec="black"))
                labels.append(m)
        if self.colours:
            heads.append(len(handles))
            handles.append(blank())
            labels.append("Retention (colour)")
        for ret, c in self.colours.items():
            handles.append(Line2D([], [], ls="", marker="s", ms=8, color=c))
            labels.append(retention_label(ret))
        return handles, labels, heads


def legend(fig: Any, handles: list[Any], labels: list[str], heads: list[int]) -> Any:
    """One legend outside the panels, on the right; heading entries in bold."""
    leg = fig.legend(handles, labels, loc="outside right upper", frameon=False)
    for i in heads:
        leg.get_texts()[i].set_fontweight("bold")
    return leg


MIN_PANEL_IN = 1.8   # a panel narrower than this (inches) widens its figure (`fit`)


def fit(fig: Any, tries: int = 8) -> Any:
    """Widen `fig` until its title clears every legend and each panel keeps MIN_PANEL_IN of
    width (constrained layout gives up, and overlaps, when the margins eat the panels)."""
    import warnings

    for _ in range(tries):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        grow = 0.0
        if any("collapsed" in str(w.message) for w in caught):
            grow = 0.5 * fig.get_figwidth()
        title = fig._suptitle
        if title is not None and title.get_text():
            box = title.get_window_extent(renderer)
            for leg in fig.legends:   # the title is centred: widening by 2x moves it clear by x
                lb = leg.get_window_extent(renderer)
                if box.overlaps(lb):
                    grow = max(grow, 2 * (box.x1 - lb.x0) / fig.dpi + 0.2)
        for ax in fig.axes:
            spec = ax.get_subplotspec() if ax.get_visible() else None
            width = ax.get_position().width * fig.get_figwidth()
            if spec is not None and width < MIN_PANEL_IN:
                grow = max(grow, (MIN_PANEL_IN - width) * spec.get_gridspec().ncols + 0.2)
        if grow <= 0:
            return fig
        fig.set_figwidth(fig.get_figwidth() + grow)
    return fig


def panels(n: int, cols: int, size: tuple[float, float], **kw: Any) -> tuple[Any, list[Any]]:
    """A constrained-layout grid of n panels (extra cells hidden)."""
    cols = max(1, min(n, cols))
    rows = math.ceil(n / cols)
    fig, axes = plt().subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows),
                               squeeze=False, layout="constrained", **kw)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)


def save(fig: Any, out: Path, stem: str, title: str, caption: str) -> Path:
    """Write `stem`.png and .svg carrying title and caption; close the figure."""
    make_dirs(out)
    png = out / f"{slug(stem)}.png"
    meta = {"Title": title, "Description": caption}
    try:
        for path, kw in ((png, {"format": "png", "dpi": DPI}), (png.with_suffix(".svg"), {"format": "svg"})):
            buf = io.BytesIO()   # rendered in memory, written whole (vlabench/records/fsio.py)
            fig.savefig(buf, metadata=meta, bbox_inches="tight", **kw)
            atomic_write_bytes(path, buf.getvalue())
    finally:
        plt().close(fig)
    return png
