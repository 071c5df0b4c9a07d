"""`vlabench compare BASE NEW`: the regression gate (per-suite diff, exit 1 when NEW is worse).

Runs are matched by (model, pruner, retention, variant, suite); when each side holds exactly
one run, those two are compared. Success rate fails the gate only when it drops by more than
`max_sr_drop` points AND the drop is significant (McNemar's exact test on the shared (task,
episode) pairs, Fisher's exact test when no pair is shared); latency fails when the mean
model-call latency rises by more than `max_latency_increase` percent. A run of BASE missing
from NEW fails too. Only finished runs whose records verify are compared: a damaged run
(`load_run` raises RecordsError) or an unfinished one (manifest status not "complete") is one
line and exit 2, never a pass.

The gate compares two runs of the same configuration made with different code or on different
machines: a pair whose model, pruner settings (name, retention, any other pruner key) or suite
(name, selected tasks, protocol, step limit) differ is refused in one line naming the difference
(`settings_difference`). When the manifests name different machines (`vlabench.records.machine`: GPU
model, driver, CUDA, cuDNN; CPU model and cores) one warning line goes to stderr.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from vlabench.core.errors import ConfigError
from vlabench.records.machine import describe, differ
from vlabench.report import cells
from vlabench.report.cells import Col, Own
from vlabench.report.grid import method_label
from vlabench.report.render import Table, fill
from vlabench.report.runs import Run, RunSet

HEADER = ["Model", "Method", "Suite", "SR base → new (%)", "ΔSR (pts)", "p", "Latency base → new (ms)",
          "ΔLatency (%)", "Verdict"]


def _key(r: Run) -> tuple:
    return (r.model, r.method, r.suite)


# configuration keys that define a run's model and suite for the gate (others, e.g. threads, are
# the machine's business); pruner keys that only document the plugin
MODEL_KEYS = ("checkpoint", "size", "dtype", "dims", "seed", "center_crop", "probe_mode")
SUITE_KEYS = ("tasks", "protocol", "protocol_version")
PRUNER_DOC_KEYS = ("name", "description", "plugin", "requires", "install_hint")


def _flat(d: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}"))
    return out


def _first_diff(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            return f"{k} ({a.get(k)!r} vs {b.get(k)!r})"
    return None


def settings_difference(b: Run, n: Run) -> str | None:
    """The first setting in which two runs differ (model, pruner, suite), or None."""
    if b.model != n.model:
        return f"model ({b.model!r} vs {n.model!r})"
    if b.suite != n.suite:
        return f"suite ({b.suite!r} vs {n.suite!r})"
    if b.pruner != n.pruner:
        return f"pruner ({b.pruner!r} vs {n.pruner!r})"
    if b.retention != n.retention:
        return f"pruner retention ({b.retention!r} vs {n.retention!r})"

    def part(r: Run, group: str, keys: tuple[str, ...] | None = None, skip: tuple[str, ...] = ()) -> dict:
        node = (r.config or {}).get(group) or {}
        node = {k: v for k, v in node.items() if (keys is None or k in keys) and k not in skip}
        return _flat(node, group)

    for group, keys, skip in (("model", MODEL_KEYS, ()), ("pruner", None, PRUNER_DOC_KEYS),
                              ("suite", SUITE_KEYS, ())):
        d = _first_diff(part(b, group, keys, skip), part(n, group, keys, skip))
        if d:
            return d
    steps = [((r.config or {}).get("run") or {}).get("max_steps") for r in (b, n)]
    return f"run.max_steps ({steps[0]!r} vs {steps[1]!r})" if steps[0] != steps[1] else None


def _machine(r: Run) -> dict[str, Any] | None:
    try:
        return json.loads((r.path / "manifest.json").read_text()).get("machine")
    except (OSError, ValueError, AttributeError):
        return None


def _p_value(b: Own, n: Own) -> tuple[float, str]:
    p, pairs = cells.mcnemar(b, n)
    if pairs:
        return p, f"McNemar, {pairs} pairs"
    from scipy import stats   # only here: importing scipy.stats costs ~0.5 s

    table = [[b.k, b.n - b.k], [n.k, n.n - n.k]]
    return float(stats.fisher_exact(table)[1]), "Fisher, unpaired"


def compare(base_dir: str, new_dir: str, max_sr_drop: float = 2.0,
            max_latency_increase: float = 10.0, alpha: float = 0.05) -> tuple[Table, bool]:
    """The diff table and whether NEW regressed beyond the thresholds."""
    base, new = RunSet.load([base_dir]), RunSet.load([new_dir])
    for r in base.runs + new.runs:
        if r.status != "complete":
            raise ConfigError(f"{r.path} is not a finished run (status {r.status}, {len(r.episodes)} "
                              f"episodes); re-run its command to finish it before comparing")
    if len(base.runs) == 1 and len(new.runs) == 1:
        pairs = [(base.runs[0], new.runs[0])]
    else:
        new_by_key = {_key(r): r for r in new.runs}
        pairs = [(b, new_by_key.get(_key(b))) for b in base.runs]
        if not any(n for _, n in pairs):
            raise ConfigError(f"nothing to compare: no run of {new_dir} matches a run of {base_dir} "
                              "(same model, pruner, retention and suite)")
    t = Table("compare", f"vlabench compare: {base_dir} → {new_dir} (fails on a significant "
              f"success drop > {max_sr_drop:g} pts at p < {alpha:g}, or latency +{max_latency_increase:g}%)",
              HEADER)
    failed = False
    warned: set[str] = set()
    for b, n in sorted(pairs, key=lambda p: _key(p[0])):
        label = [b.model, method_label(b.method), b.suite]
        if n is None:
            t.add(label + ["", "", "", "", "", "REGRESSION: missing in NEW"])
            failed = True
            continue
        if b.protocol_version != n.protocol_version:
            raise ConfigError(f"{b.name} and {n.name} use protocol versions {b.protocol_version} "
                              f"and {n.protocol_version}; they cannot be compared")
        diff = settings_difference(b, n)
        if diff:
            raise ConfigError(f"{b.path} and {n.path} differ in {diff}; compare gates two runs of the "
                              f"same model, pruner settings and suite (made with different code or "
                              f"on different machines); to put different methods side by side, run "
                              f"`vlabench report {base_dir} {new_dir}`")
        mb, mn = _machine(b), _machine(n)
        if differ(mb, mn):
            warned.add(f"vlabench: warning: BASE ran on {describe(mb)}, NEW on {describe(mn)}: "
                       f"latency differences include the machine's")
        if b.device != n.device:
            t.note(f"{b.name} ran on {b.device}, {n.name} on {n.device}: latencies differ by machine")
        ob, on = cells.own(b, Col("", b.suite)), cells.own(n, Col("", n.suite))
        d_sr = on.sr - ob.sr
        p, how = _p_value(ob, on)
        lat_b, lat_n = cells.metrics(b, None, Col("", b.suite))["latency_ms"], cells.metrics(n, None, Col("", n.suite))["latency_ms"]
        d_lat = 100 * (lat_n / lat_b - 1) if lat_b and not math.isnan(lat_b) else math.nan
        verdicts = []
        if -d_sr > max_sr_drop:
            verdicts.append("REGRESSION: success" if p < alpha else "success drop within noise")
        if not math.isnan(d_lat) and d_lat > max_latency_increase:
            verdicts.append("REGRESSION: latency")
        failed |= any(v.startswith("REGRESSION") for v in verdicts)
        v = {"sr_b": ob.sr, "sr_n": on.sr, "d": d_sr, "p": p, "lb": lat_b, "ln": lat_n, "dl": d_lat}
        t.add(label + [fill("{sr_b:.1f} → {sr_n:.1f}", v), fill("{d:+.1f}", v),
                       fill("{p:.3g}", v) + f" ({how})", fill("{lb:.1f} → {ln:.1f}", v),
                       fill("{dl:+.1f}", v), "; ".join(verdicts) or "ok"])
    for r in new.runs:
        if all(n is not r for _, n in pairs):
            t.note(f"{r.name}: only in NEW, not compared")
    for line in sorted(warned):
        print(line, file=sys.stderr)
    return t, failed
