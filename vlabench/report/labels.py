"""Readable names for figures: suites in the papers' order, and short task names.

The papers list LIBERO's suites as Spatial, Object, Goal, Long (= libero_10), then LIBERO-90;
SIMPLER's settings come after. `suite_order` sorts suite ids that way (unknown suites last,
alphabetically); `suite_name` gives the papers' names ("LIBERO-Spatial").

`task_labels` turns LIBERO's task names (`KITCHEN_SCENE3_turn_on_the_stove`) into short labels
("turn on stove"): the scene prefix goes (kept, abbreviated, only where two tasks would
otherwise read the same), "the" goes, words shared by every task of a suite at the start and
end are factored out into a template ("pick up black bowl … and place it on plate"), and a
label is wrapped on two lines at most.
"""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from collections.abc import Iterable

SUITE_NAMES = {
    "libero_spatial": "LIBERO-Spatial", "libero_object": "LIBERO-Object",
    "libero_goal": "LIBERO-Goal", "libero_10": "LIBERO-Long", "libero_90": "LIBERO-90",
    "simpler_google_vm": "SIMPLER Google (visual matching)",
    "simpler_google_va": "SIMPLER Google (variant aggregation)",
    "simpler_bridge": "SIMPLER Bridge (WidowX)",
}
SUITE_ORDER = list(SUITE_NAMES)
_SCENE = re.compile(r"^([A-Z]+(?:_[A-Z]+)*)_SCENE(\d+)_")
WRAP = 30


def suite_name(suite: str) -> str:
    """The papers' name of a suite ("libero_10" -> "LIBERO-Long"); unknown ids unchanged."""
    return SUITE_NAMES.get(suite, suite)


def suite_key(suite: str) -> tuple[int, str]:
    """Sort key: the papers' order, then unknown suites alphabetically."""
    return (SUITE_ORDER.index(suite) if suite in SUITE_NAMES else len(SUITE_ORDER), suite)


def suite_order(suites: Iterable[str]) -> list[str]:
    """Distinct suite ids in the papers' order."""
    return sorted(set(suites), key=suite_key)


def _words(name: str) -> tuple[str, list[str]]:
    """(abbreviated scene or "", the instruction's words without "the")."""
    scene = ""
    m = _SCENE.match(name)
    if m:
        scene = f"{m.group(1).replace('_', ' ').capitalize()} {m.group(2)}"
        name = name[m.end():]
    words = [w for w in re.split(r"[_\s]+", name.strip()) if w and w.lower() != "the"]
    return scene, words


def _shared(lists: list[list[str]], from_end: bool) -> int:
    """How many words every list shares at its start (or end)."""
    n = 0
    while all(len(w) > n for w in lists):
        picks = {tuple(w)[-1 - n] if from_end else w[n] for w in lists}
        if len(picks) != 1:
            break
        n += 1
    return n


def wrap(text: str, width: int = WRAP, lines: int = 2) -> str:
    """`text` on at most `lines` lines of about `width` characters ("…" where cut)."""
    return "\n".join(textwrap.wrap(text, width, max_lines=lines, placeholder=" …")) or text


def task_labels(names: dict[int, str], width: int = WRAP) -> tuple[dict[int, str], str]:
    """Short, distinct labels for task id -> task name, and the shared template ("" if none).

    The template is the words every task shares at both ends, "…" standing for the label
    ("pick up black bowl … and place it on plate")."""
    parsed = {t: _words(n) for t, n in names.items()}
    words = [w for _, w in parsed.values()]
    head = tail = 0
    if len(words) >= 3:
        head = _shared(words, False)
        tail = _shared([w[head:] for w in words], True)
        if head + tail < 2 or any(len(w) <= head + tail for w in words):
            head = tail = 0
    template = ""
    if head or tail:
        w0 = words[0]
        template = " ".join(w0[:head] + ["…"] + w0[len(w0) - tail:])
    short = {t: " ".join(w[head:len(w) - tail]) or names[t] for t, (_, w) in parsed.items()}
    clash = {s for s, c in Counter(short.values()).items() if c > 1}
    for t, (scene, _) in parsed.items():
        if short[t] in clash and scene:
            short[t] = f"{scene}: {short[t]}"
    clash = {s for s, c in Counter(short.values()).items() if c > 1}
    labels = {t: wrap(f"{s} (task {t})" if s in clash else s, width) for t, s in short.items()}
    clash = {s for s, c in Counter(labels.values()).items() if c > 1}  # cut to the same text
    return {t: f"{t}: {s}" if s in clash else s for t, s in labels.items()}, template
