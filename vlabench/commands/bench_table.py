"""The tables `vlabench bench` prints: counts (FLOPs, tokens) and latency by stage with the
per-pair speedup, sized to the terminal (rich's Console picks its width)."""

from __future__ import annotations

from typing import Any


def _fmt_ratio(s: dict[str, Any] | None) -> tuple[str, str, str]:
    """(median, 95% interval, IQR) cells of a per-pair ratio summary."""
    if not s or s.get("median") is None:
        return "", "", ""
    (lo, hi), (q1, q3) = s["ci95"], s["iqr"]
    return f"{s['median']:.2f}×", f"[{lo:.2f}, {hi:.2f}]", f"{q1:.2f}–{q3:.2f}"


def flops_kind(r: dict[str, Any]) -> str:
    """How the FLOPs figures were obtained: "analytic" (shape formulas) or "counted" (torch's
    FlopCounterMode); older results without `flops_source` were analytic."""
    return str(r.get("flops_source", "analytic")).split(" ")[0]


def counts_table(r: dict[str, Any]) -> Any:
    """FLOPs, sequence and token counts: pruned, baseline and their ratio, each row marked
    analytic / counted (the `figure` column)."""
    from rich.table import Table

    base = r.get("baseline")
    t = Table("", r["pruner"], *(["none", f"{r['pruner']}/none"] if base else []), "figure",
              title="Compute and tokens per model call")
    kind = flops_kind(r)

    def row(label: str, key: str | tuple[str, str], fmt: str, scale: float = 1.0) -> None:
        def get(d: dict[str, Any]) -> float | None:
            v = d.get(key[0], {}).get(key[1]) if isinstance(key, tuple) else d.get(key)
            return None if v is None else v * scale
        v = get(r) or 0.0
        cells = [label, format(v, fmt)]
        if base:
            bv = get(base)
            cells += [format(bv, fmt) if bv is not None else "", f"{v / bv:.3f}" if bv else ""]
        t.add_row(*cells, kind if "FLOPs" in label or "MACs" in label else "counted")

    acc = r.get("flops_accounting", "executed")
    if acc in ("executed", "both"):
        row("TFLOPs / call (mean)", "flops_per_call", ".4f", 1e-12)
        row("TFLOPs, last call (steady state)", "flops_last_call", ".4f", 1e-12)
        for stage in r["flops_by_stage"]:
            row(f"  {stage} TFLOPs", ("flops_by_stage", stage), ".4f", 1e-12)
        row("  LLM T-MACs (executed)", "llm_tmacs_papers_convention", ".4f")
        row("  LLM T-MACs, last call", "llm_tmacs_last_call", ".4f")
    if acc in ("paper", "both") and "paper_llm_tmacs_per_call" in r:
        row("paper accounting: LLM T-MACs (mean)", "paper_llm_tmacs_per_call", ".4f")
        row("paper accounting: LLM T-MACs, last call", "paper_llm_tmacs_last_call", ".4f")
    row("sequence length (prefill)", "sequence_length", ".0f")
    row("text tokens", "text_tokens", ".0f")
    row("visual tokens in", "tokens_in", ".0f")
    row("visual tokens kept (last layer)", "tokens_kept_mean", ".1f")
    return t


ACCOUNTING_NOTES = {
    "executed": "executed: every matrix product of the call (vision, LLM prefill and decode, probes, LM "
                "head, action head), 2 FLOPs per multiply-add",
    "paper": "paper: the authors' counter (VLA-Pruner @ 3d156ee / VLA-Cache modeling_llama.py): LLM "
             "prefill layers only, C(n) = 4nd²+2n²d+3ndm multiply-adds on the rows each layer computed",
}


def _pct(v: float | None) -> str:
    return "" if v is None else f"{100 * v:.2f}%"


def papers_table(r: dict[str, Any]) -> Any | None:
    """FLOPs of the pruned policy as % of pruner=none, under the accounting(s) asked for, with
    the papers' published value(s) for this configuration beside them (results/reference);
    None without a baseline."""
    from rich.table import Table

    sp = r.get("speedup")
    if not sp:
        return None
    acc = r.get("flops_accounting", "executed")
    t = Table(title=f"FLOPs of {r['pruner']} as % of none, beside the papers")
    for c, j in (("", "left"), ("mean over calls", "right"), ("last call", "right"), ("figure", "left")):
        t.add_column(c, justify=j, no_wrap=True)
    kind = flops_kind(r)
    if acc in ("executed", "both"):
        t.add_row("ours, executed: whole call", _pct(sp["flops_ratio"]), _pct(sp["flops_ratio_last_call"]), kind)
        if "llm_flops_ratio" in sp:
            t.add_row("ours, executed: LLM", _pct(sp["llm_flops_ratio"]), _pct(sp["llm_flops_ratio_last_call"]),
                      kind)
    if acc in ("paper", "both") and "paper_llm_ratio" in sp:
        t.add_row("ours, paper accounting: LLM prefill", _pct(sp["paper_llm_ratio"]),
                  _pct(sp["paper_llm_ratio_last_call"]), "analytic")
    for p in r.get("published_flops") or []:
        t.add_row(f"published: {p['paper']} Table {p['table']} ({p['label']})", f"{p['flops_pct']:g}%", "",
                  "published")
    return t


def latency_table(r: dict[str, Any], width: int = 120) -> Any:
    """Latency percentiles by stage; with a baseline, the per-pair speedup none/pruned. Below
    110 columns the p95 columns are left out (they stay in bench.out)."""
    from rich.table import Table

    base = r.get("baseline")
    per_pair = (r.get("speedup") or {}).get("latency_per_pair") or {}
    p95 = width >= 110 or not base
    name = r["pruner"]
    cols = ["stage", f"{name} p50"] + ([f"{name} p95"] if p95 else [])
    if base:
        cols += ["none p50"] + (["none p95"] if p95 else []) + ["speedup", "95% CI", "IQR"]
    title = (f"Latency per model call (ms, measured); speedup = none / {name}, per interleaved pair"
             if base else "Latency per model call (ms, measured)")
    t = Table(title=title)
    for c in cols:
        t.add_column(c, no_wrap=c != "stage", justify="left" if c == "stage" else "right")
    for stage, q in r["latency_ms"].items():
        cells = [stage, f"{q['p50']:.2f}"] + ([f"{q['p95']:.2f}"] if p95 else [])
        if base:
            bq = base["latency_ms"].get(stage)
            cells += [f"{bq['p50']:.2f}" if bq else ""] + ([f"{bq['p95']:.2f}" if bq else ""] if p95 else [])
            cells += list(_fmt_ratio(per_pair.get(stage))) if stage in per_pair else ["n/a", "", ""]
        t.add_row(*cells)
    return t


MEM_NOTE = {"cuda": "absolute peak of torch.cuda.max_memory_allocated, reset before each call",
            "rss": "peak increase of the process's resident set during the call (CPU)"}


def _meters(r: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Row label -> {p50, p95, max} of the memory / GPU-time figures `r` holds."""
    out = {}
    if "mem_peak_mb" in r:
        out[f"peak MiB ({r['mem_peak_mb']['kind']})"] = r["mem_peak_mb"]
    if "cuda_ms" in r:
        out["CUDA time, ms"] = r["cuda_ms"]
    k = r.get("cuda_kernel_ms_one_call")
    if k is not None:
        out["kernel time, ms (1 profiled call)"] = {"p50": k, "p95": k, "max": k}
    return out


def meter_table(r: dict[str, Any]) -> Any | None:
    """Peak memory and GPU time per model call (p50 / p95 / max), pruned and baseline; None
    when none was measured (meta device)."""
    from rich.table import Table

    ours, base = _meters(r), r.get("baseline")
    if not ours:
        return None
    theirs = _meters({**base, "pruner": "none"}) if base else {}
    name = r["pruner"]
    t = Table(title="Memory and GPU time per model call (measured)")
    cols = ["", f"{name} p50", f"{name} p95", f"{name} max"] + (["none p50", "none max"] if base else [])
    for c in cols:
        t.add_column(c, no_wrap=True, justify="left" if not c else "right")
    for label, q in ours.items():
        cells = [label, f"{q['p50']:.1f}", f"{q['p95']:.1f}", f"{q['max']:.1f}"]
        if base:
            bq = theirs.get(label)
            cells += [f"{bq['p50']:.1f}", f"{bq['max']:.1f}"] if bq else ["", ""]
        t.add_row(*cells)
    return t


def summary_line(r: dict[str, Any]) -> str | None:
    """One sentence with the headline numbers (instead of a Python dict)."""
    sp = r.get("speedup")
    if not sp:
        return None
    parts = []
    if r.get("flops_accounting", "executed") in ("executed", "both"):
        parts.append(f"FLOPs {r['pruner']}/none {sp['flops_ratio']:.3f} (last call {sp['flops_ratio_last_call']:.3f})")
    if r.get("flops_accounting") in ("paper", "both") and "paper_llm_ratio" in sp:
        parts.append(f"paper-accounting LLM FLOPs {r['pruner']}/none {sp['paper_llm_ratio']:.3f} "
                     f"(last call {sp['paper_llm_ratio_last_call']:.3f})")
    tot = (sp.get("latency_per_pair") or {}).get("total")
    if tot and tot.get("median") is not None:
        m, ci, iqr = _fmt_ratio(tot)
        parts.append(f"total latency speedup {m} (95% CI {ci}, IQR {iqr}, {tot['n_pairs']} pairs)")
    return "vs none: " + "; ".join(parts)


def print_result(r: dict[str, Any], console: Any = None) -> None:
    from rich.console import Console

    con = console or Console()
    con.print(f"[bold]{r['model']}[/] + [bold]{r['pruner']}[/] on {r['device']} "
              f"({r['parameters'] / 1e9:.3f}B parameters, {r['dtype']})")
    con.print(counts_table(r))
    papers = papers_table(r)
    if papers is not None:
        con.print(papers)
    acc = r.get("flops_accounting", "executed")
    con.print("FLOPs accounting (bench.flops=" + acc + "): "
              + "; ".join(v for k, v in ACCOUNTING_NOTES.items() if acc in (k, "both"))
              + ("; published: the paper's own figure, transcribed in results/reference (not ours)"
                 if r.get("published_flops") and papers is not None else ""))
    if "latency_ms" in r:
        con.print(latency_table(r, con.width))
        if r.get("timing"):
            con.print(f"timing: {r['timing']['order']}; speedup: median of the per-pair ratios, "
                      "percentile-bootstrap 95% CI of that median, interquartile range; the "
                      "pruner stage has no ratio (the baseline does no pruning work)")
        if "preprocess" in r["latency_ms"]:
            con.print("total = vision + pruner + llm + action_head, the model call as the papers time "
                      "it; preprocess (JPEG round trip, resize, crop of the frames) is timed beside "
                      "it, not in total")
    else:
        con.print("meta device: FLOPs and token counts only (latency needs real tensors: a GPU)")
    meters = meter_table(r)
    if meters is not None:
        con.print(meters)
        kind = r.get("mem_peak_mb", {}).get("kind", "")
        notes = [f"{k}: {MEM_NOTE[k]}" for k in kind.split("/") if k in MEM_NOTE]
        if "cuda_ms" in r:
            notes.append("CUDA time: span of the GPU timeline between events recorded before and after "
                         "the call")
        if r.get("cuda_kernel_ms_one_call") is not None:
            notes.append("kernel time: sum of the GPU kernel durations of one extra call under "
                         "torch.profiler (the GPU's busy time; VLA-Pruner Table 5 'CUDA Time')")
        con.print("peak memory " + "; ".join(notes) + " (metered outside the timed latency stages)")
    con.print(f"token counts: {r.get('counts_source', 'exact shapes')}")
    if "meta_rule" in r:
        m = r["meta_rule"]
        con.print(f"  (the pruner's own meta-device rule would report {m['flops_per_call'] / 1e12:.4f} "
                  f"TFLOPs / call, {m['tokens_kept_mean']:.1f} visual tokens kept: not what it keeps)")
    con.print("figure: measured = timed or metered on this machine; counted = tallied from the calls' "
              "tensors (or torch's FLOP counter); analytic = computed from the shapes each call ran; "
              f"published = the paper's number. FLOPs here: {r.get('flops_source', 'analytic')}")
    line = summary_line(r)
    if line:
        con.print(line)
