"""The `vlabench` command line: verb-first, Hydra overrides after the verb.

Importing this module must stay cheap: heavy modules are imported inside the commands.
Every user error is one line on stderr and exit code 2 (see `main`).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import typer

from vlabench.core import registry
from vlabench.core.errors import ConfigError
from vlabench.records.files import RecordsError
from vlabench.run import stopping
from vlabench.run.stopping import Terminated

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="vlabench: benchmark harness for accelerated Vision-Language-Action policies.",
    pretty_exceptions_enable=False,
)

def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"vlabench {version('vlabench')}")
        except PackageNotFoundError:
            typer.echo("vlabench (not installed as a package: version unknown)")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", is_eager=True, callback=_version,
                                       help="Print the version and exit")) -> None:
    """vlabench: benchmark harness for accelerated Vision-Language-Action policies."""


class Stopped(Exception):
    """A command stopped by a signal: its exit code and one line (typer would swallow the
    KeyboardInterrupt into a silent exit 130)."""

    def __init__(self, code: int, line: str):
        super().__init__(line)
        self.code = code


RESUME_NOTE = "; finished episodes are saved, re-run the same command to resume"


def interruptible(fn: Callable[..., Any], note: str = RESUME_NOTE) -> Callable[..., Any]:
    """Ctrl-C -> exit 130, SIGTERM -> exit 143, each with one line (see `main`)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Terminated:
            raise Stopped(143, f"terminated (SIGTERM){note}") from None
        except KeyboardInterrupt:
            raise Stopped(130, f"interrupted{note}") from None
    return wrapper


def interruptible_read(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`interruptible` for commands that only read records (nothing to resume)."""
    return interruptible(fn, note="")


OVERRIDES_HELP = "Hydra overrides, e.g. model=openvla-oft pruner=fastv suite=libero_10 run.max_steps=16"
EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def run_keys() -> list[str]:
    """Every run.* setting, as configs/config.yaml ships it (reads YAML only)."""
    from vlabench.core import yamlio

    cfg = yamlio.safe_load((registry.BUILTIN_CONFIGS / "config.yaml").read_text(encoding="utf-8"))
    return [f"run.{k}" for k in (cfg.get("run") or {})]


def groups_epilog() -> str:
    """The config groups and their choices, for --help (reads YAML only)."""
    lines = ["Config groups (choose with group=name):"]
    for group in registry.GROUPS:
        names = ", ".join(sorted(registry.entries(group)))
        lines.append(f"  {group}: {names}")
    lines.append(f"Run settings: {' '.join(run_keys())}; suite.tasks=[0,3] selects tasks "
                 f"(configs/config.yaml explains each).")
    from vlabench.launch.sweep import preset_names

    lines.append("Paper presets (+experiment=NAME, no -m needed): " + ", ".join(preset_names()))
    return "\n\n".join(lines)


@app.command(context_settings=EXTRA_ARGS, epilog=groups_epilog())
@interruptible
def run(
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    multirun: bool = typer.Option(False, "--multirun", "-m", help="Sweep: one run per point of the "
                                  "cross product (pruner=fastv,none pruner.retention=0.5,0.25)"),
    cfg: str = typer.Option(None, "--cfg", "-c", help="job | all: print each job's composed config, run nothing"),
    info: bool = typer.Option(False, "--info", help="Config search path, groups, defaults and jobs; run nothing"),
) -> None:
    """Roll out a model (+ pruner) on a suite's episodes and write records; re-run to resume.

    -m sweeps (Hydra's grammar: a,b  range(1,4)  choice(a,b)  glob(libero_*)); +experiment=NAME
    runs a paper table's preset (configs/experiment/). Every job is checked before any runs."""
    from vlabench.launch import sweep

    req = sweep.split_request(overrides or [])
    jobs, notes = sweep.jobs_for(req, multirun)
    if cfg is not None:
        sys.stdout.write(sweep.cfg_text(jobs, cfg, req.hydra))
        return
    if info:
        sys.stdout.write(sweep.info_text(jobs, req.hydra))
        return
    if not multirun and req.is_plain and str(jobs[0].cfg.run.get("launcher", "local")) == "local":
        from vlabench.run.runner import run_from_config

        summary = run_from_config(jobs[0].cfg)
        raise typer.Exit(0 if summary is not None else 1)
    for line in notes + sweep.plan_lines(jobs, req.hydra):
        print(line)
    raise typer.Exit(sweep.launch(jobs, req.hydra))


@app.command(context_settings=EXTRA_ARGS)
@interruptible_read
def plan(
    overrides: list[str] = typer.Argument(None, help="The same arguments as `vlabench run`",
                                          show_default=False),
    multirun: bool = typer.Option(False, "--multirun", "-m", help="Sweep, as `run -m`"),
) -> None:
    """The runs a `run` command would make, what exists already, and the hours left (runs nothing)."""
    from vlabench.launch import sweep
    from vlabench.launch.plan import plan_text

    req = sweep.split_request(overrides or [])
    jobs, notes = sweep.jobs_for(req, multirun or req.experiment is not None or
                                 bool(sweep.sweeps_in(req.overrides)))
    sys.stdout.write("".join(f"{n}\n" for n in notes) + plan_text(jobs))


@app.command(context_settings=EXTRA_ARGS)
@interruptible_read
def fetch(
    overrides: list[str] = typer.Argument(None, help="The same arguments as `vlabench run`",
                                          show_default=False),
    multirun: bool = typer.Option(False, "--multirun", "-m", help="Sweep, as `run -m`"),
) -> None:
    """Download the checkpoints a `run` command or preset needs (Hugging Face Hub, resumable)."""
    from vlabench.commands.fetch import fetch as fetch_checkpoints
    from vlabench.launch import sweep

    req = sweep.split_request(overrides or [])
    jobs, _ = sweep.jobs_for(req, multirun or req.experiment is not None or
                             bool(sweep.sweeps_in(req.overrides)))
    raise typer.Exit(fetch_checkpoints([j.cfg for j in jobs]))


@app.command()
@interruptible
def merge(
    inputs: list[str] = typer.Argument(..., help="Shard run directories or globs"),
    into: str = typer.Option(None, "--into", help="The merged run directory (default: the shards' "
                             "name without .shard-i-of-n, beside them)"),
) -> None:
    """Join shard runs (run.shard=i/n) into one run directory; duplicates once, conflicts refused."""
    from vlabench.records.merge import merge_cli

    raise typer.Exit(merge_cli(list(inputs), into))


@app.command(context_settings=EXTRA_ARGS)
@interruptible
def selftest(
    overrides: list[str] = typer.Argument(None, help="suite=libero_object (default), suite=a,b or "
                                          "suite=all; run.max_steps=N etc.", show_default=False),
) -> None:
    """Check the simulator install and protocol: the privileged oracle on a fixed sample."""
    from vlabench.commands.selftest import selftest as run_selftest

    raise typer.Exit(run_selftest(overrides or []))


@app.command("list")
def list_plugins(
    readings: bool = typer.Option(False, "--readings", help="Every point where a method's paper "
                                  "and public code disagree, and the side each run follows."),
    markdown: bool = typer.Option(False, "--markdown", help="With --readings: the README table."),
) -> None:
    """Every registered model, pruner and suite, and what is missing to use it on this machine."""
    from vlabench.commands.listing import print_list

    print_list(readings, markdown)


@app.command()
@interruptible_read
def report(
    runs: list[str] = typer.Argument(None, help="Run directories or globs (default: every run under results/)",
                                     show_default=False),
    fmt: str = typer.Option("md", "--format", "-f", help="md (or markdown) | latex | csv | json | html"),
    out: str = typer.Option(None, "--out", "-o", help="Write the report, tidy CSV and plots (PNG+SVG) here; without it every format "
                           "prints to stdout (html: one self-contained page)"),
    with_reference: bool = typer.Option(False, "--with-reference", help="Show the papers' numbers and the difference"),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw plots when writing to --out or html"),
    ci_unit: str = typer.Option("episode", "--ci-unit", help="What the speedup's bootstrap intervals resample: "
                                "episode (whole episodes, the calls of one episode being correlated) | call"),
) -> None:
    """Tables in the papers' layouts, with confidence intervals, paired tests and plots."""
    from pathlib import Path

    from vlabench.commands.options import check_report_out
    from vlabench.report.build import report as build_report

    check_report_out(out)
    text = build_report(runs or None, fmt, Path(out) if out else None, with_reference, plots=plots,
                        ci_unit=ci_unit)
    sys.stdout.write(text)


@app.command()
@interruptible_read
def compare(
    base_dir: str = typer.Argument(..., help="Baseline results (a run directory or a folder of runs)"),
    new_dir: str = typer.Argument(..., help="New results to check against BASE_DIR"),
    max_sr_drop: float = typer.Option(2.0, help="Success-rate drop (points) tolerated before a significant drop fails"),
    max_latency_increase: float = typer.Option(10.0, help="Mean latency increase (%) tolerated"),
    alpha: float = typer.Option(0.05, help="Significance level of the paired success test"),
) -> None:
    """Regression gate: per-suite diff of NEW against BASE; exit 1 when NEW is worse."""
    from vlabench.commands.options import check_compare_options
    from vlabench.report.compare import compare as run_compare
    from vlabench.report.render import markdown

    check_compare_options(max_sr_drop, max_latency_increase, alpha)
    table, failed = run_compare(base_dir, new_dir, max_sr_drop, max_latency_increase, alpha)
    sys.stdout.write(markdown(table))
    print("FAIL: NEW is worse than BASE beyond the thresholds" if failed else "OK: no regression")
    raise typer.Exit(1 if failed else 0)


@app.command(context_settings=EXTRA_ARGS)
@interruptible_read   # nothing to resume: no "finished episodes are saved" note
def bench(
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP + " bench.calls=20 bench.out=FILE.json",
                                          show_default=False),
    replay: str = typer.Option(None, "--replay", help="Replay RUN_DIR's recorded observations (run.record_obs) at "
                               "batch 1, interleaved with pruner=none; writes replay.csv/json there (run.device= may "
                               "be given)", metavar="RUN_DIR"),
    fit_profile: str = typer.Option(None, "--fit-profile", help="Fit a latency profile (L = a + b LLM FLOPs + "
                                    "c vision FLOPs) to the measured calls of the pruner and pruner=none and "
                                    "write it here (read by timing.latency=profile:FILE)", metavar="FILE.yaml"),
) -> None:
    """Latency per stage, FLOPs and tokens kept over N policy calls on synthetic observations."""
    from vlabench.commands.bench import bench_from_config
    from vlabench.commands.options import check_output_file
    from vlabench.launch.compose import compose

    if replay is not None:
        from vlabench.commands.bench_replay import replay as run_replay

        run_replay(replay, overrides or [])
        return
    cfg = compose(overrides or [])
    if fit_profile is not None:
        from vlabench.commands.bench_profile import fit_profile as run_fit

        check_output_file("--fit-profile", fit_profile)
        from pathlib import Path

        run_fit(cfg, Path(fit_profile))
        return
    check_output_file("bench.out", cfg.bench.get("out"))
    bench_from_config(cfg)


def main() -> None:
    """Console entry point: user errors become one line and exit code 2.

    Ctrl-C exits 130 and SIGTERM 143 (128 + the signal, as a shell reports them); both leave
    the manifest `interrupted`, every finished episode saved and the run resumable."""
    stopping.install()   # SIGINT/SIGTERM: also remembered, in case simulator code swallows them
    try:
        # with standalone_mode=False, click returns typer.Exit's code instead of raising it
        rc = app(standalone_mode=False)
    except (ConfigError, RecordsError) as e:
        print(f"vlabench: error: {e}", file=sys.stderr)
        sys.exit(2)
    except Stopped as e:
        print(f"vlabench: {e}", file=sys.stderr)
        sys.exit(e.code)
    except Terminated:
        print("vlabench: terminated (SIGTERM)", file=sys.stderr)
        sys.exit(143)
    except (typer.Abort, KeyboardInterrupt):
        print("vlabench: interrupted; finished episodes are saved, re-run to resume", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:  # click usage errors (typer vendors click: match by interface)
        names = {c.__name__ for c in type(e).__mro__}
        if "NoArgsIsHelpError" in names:
            e.show()
            sys.exit(e.exit_code if e.exit_code else 2)
        if "ClickException" in names and hasattr(e, "format_message"):
            ctx = getattr(e, "ctx", None)
            cmd = ctx.command_path if ctx is not None else "vlabench"
            msg = " ".join(e.format_message().split())
            print(f"vlabench: error: {msg} (see `{cmd} --help`)", file=sys.stderr)
            sys.exit(2)
        if isinstance(e, OSError) and e.filename is not None:   # a file written outside records/fsio
            print(f"vlabench: error: {e.filename}: {e.strerror or e}", file=sys.stderr)
            sys.exit(2)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
