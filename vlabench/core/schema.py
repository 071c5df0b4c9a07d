"""The columns of the record files (episodes.csv, calls.csv, summary.csv) and their version:
the contract between the run loop that writes them, the metrics that summarise them and the
report that reads them. The files themselves: vlabench.records.files."""

from __future__ import annotations

# Bumped whenever a column's meaning changes; the report refuses to mix versions.
RECORDS_VERSION = 1

EPISODE_COLUMNS = [
    "run_id", "model", "pruner", "suite", "task_id", "task_name", "episode", "init_state",
    "seed", "success", "steps", "policy_calls", "model_calls", "wall_s", "sim_s", "policy_s",
    "error_type", "error",
    # suite.timing=sync|async only (a frozen run writes the layout without them): simulated
    # seconds to success, hold steps, expired chunk actions, end-effector motion quality
    "completion_s", "held_steps", "expired_actions", "jerk_mean", "jerk_p95", "oscillation_hz",
    "path_ratio",
]
CALL_COLUMNS = [
    "task_id", "episode", "call", "step", "source", "warmup",
    "lat_vision_ms", "lat_llm_ms", "lat_action_head_ms", "lat_pruner_ms", "lat_total_ms",
    "tokens_in", "tokens_kept", "tokens_by_layer", "flops", "mode", "queue_wait_ms",
    "mem_peak_mb", "mem_kind", "cuda_ms", "lat_preprocess_ms",
    # suite.timing=sync|async only: the call's simulated latency, the control steps it cost,
    # the actions of its chunk that had expired on arrival (async)
    "sim_latency_ms", "delay_steps", "expired_actions",
    # calls served together in one batched forward (run.batch); above 1 the latency is the batch's
    "batch",
]
SUMMARY_COLUMNS = [
    "level", "suite", "task_id", "task_name", "episodes", "successes", "success_rate",
    "sr_ci_low", "sr_ci_high", "errors", "latency_mean_ms", "latency_p50_ms", "latency_p95_ms",
    "model_calls", "flops_mean", "tokens_kept_mean",
    "calls_hz", "tokens_pruned_mean", "mem_peak_mb_max", "mem_kind", "cuda_ms_mean",
]
# Columns appended (at the end, in this order) after records version 1 was first written: a
# file whose header lacks some of them (an older run: calls.csv before queue_wait_ms, or before
# the memory columns, or before lat_preprocess_ms; summary.csv before its efficiency columns)
# still reads, with those cells empty, and a resumed run appends in its own layout. A calls.csv
# without lat_preprocess_ms timed the image preprocessing inside lat_vision_ms and lat_total_ms.
TIMING_EPISODE_COLUMNS = ("completion_s", "held_steps", "expired_actions", "jerk_mean", "jerk_p95",
                          "oscillation_hz", "path_ratio")
TIMING_CALL_COLUMNS = ("sim_latency_ms", "delay_steps", "expired_actions")
ADDED_COLUMNS = frozenset({"queue_wait_ms", "mem_peak_mb", "mem_kind", "cuda_ms", "lat_preprocess_ms",
                           "calls_hz", "tokens_pruned_mean", "mem_peak_mb_max", "cuda_ms_mean",
                           *TIMING_EPISODE_COLUMNS, *TIMING_CALL_COLUMNS, "batch"})


def layouts(timed: bool) -> tuple[list[str], list[str]]:
    """(episodes.csv, calls.csv) columns a new run writes: a frozen run leaves out the timing
    columns, so its files are byte for byte those of a run made before they existed."""
    if timed:
        return list(EPISODE_COLUMNS), list(CALL_COLUMNS)
    return ([c for c in EPISODE_COLUMNS if c not in TIMING_EPISODE_COLUMNS],
            [c for c in CALL_COLUMNS if c not in TIMING_CALL_COLUMNS])
LATENCY_STAGES = ("vision", "llm", "action_head", "pruner", "total", "preprocess")
# Stages timed beside the call but left out of "total" (lat_total_ms = vision + pruner + llm +
# action_head + untimed gaps): "preprocess" is the camera frames' preparation (TF JPEG round trip,
# resize, crop), which the published methods' timed regions leave out too (README, "Latency").
OUTSIDE_TOTAL_STAGES = ("preprocess",)
# calls.csv cells that measure the machine (time, memory): two runs of one config differ there
MEASURED_CALL_COLUMNS = frozenset({f"lat_{s}_ms" for s in LATENCY_STAGES}
                                  | {"queue_wait_ms", "mem_peak_mb", "cuda_ms", "batch"})
