"""Every bad input is one line, exit 2, and nothing created; booleans parse strictly; the
Hydra quoting of odd run names is explained."""

from __future__ import annotations

import pytest
from conftest import run_cli

from vlabench.core.config import strict_bool
from vlabench.core.errors import ConfigError
from vlabench.launch.compose import compose
from vlabench.run.runner import run_from_config

FAST = ["model=test-zero", "suite=test-fast", "run.quiet=true"]


@pytest.mark.parametrize("word,value", [
    ("true", True), ("yes", True), ("on", True), ("1", True), ("TRUE", True), ("Yes", True),
    ("false", False), ("no", False), ("off", False), ("0", False), ("Off", False),
])
def test_booleans_accept_the_usual_words_with_their_meaning(word, value):
    cfg = compose([*FAST, f"run.overwrite={word}", f"run.quiet={word}", f"bench.baseline={word}"])
    assert cfg.run.overwrite is value and cfg.run.quiet is value and cfg.bench.baseline is value
    assert strict_bool("x", word) is value


@pytest.mark.parametrize("key", ["run.overwrite", "run.quiet", "bench.baseline"])
@pytest.mark.parametrize("word", ["maybe", "2", "-1", "nope", "0.5", "[1]"])
def test_anything_else_is_not_a_boolean(key, word):
    with pytest.raises(ConfigError, match=rf"{key}=.* is not a boolean; valid: true/false, yes/no, on/off, 1/0"):
        compose([*FAST, f"{key}={word}"])


def test_overwrite_no_on_a_finished_run_resumes_it_and_deletes_nothing(tmp_path):
    out = [*FAST, f"run.output_dir={tmp_path}", "run.name=r", "run.episodes_per_task=1"]
    run_from_config(compose(out))
    (tmp_path / "r" / "mine.txt").write_text("keep")
    before = (tmp_path / "r" / "episodes.csv").read_bytes()
    for word in ("no", "off", "0", "false"):
        run_from_config(compose([*out, f"run.overwrite={word}"]))
        assert (tmp_path / "r" / "episodes.csv").read_bytes() == before
    run_from_config(compose([*out, "run.overwrite=yes"]))   # overwrite deletes records only
    assert (tmp_path / "r" / "mine.txt").read_text() == "keep"


@pytest.mark.parametrize("override,message", [
    ("run.seed=abc", "run.seed='abc' is not an integer"),
    ("run.seed=1.5", "run.seed=1.5 is not an integer"),
    ("run.seed=-1", "run.seed=-1 is invalid; valid: an integer >= 0"),
    ("bench.calls=abc", "bench.calls='abc' is not an integer"),
    ("bench.calls=0", "bench.calls=0 is invalid; valid: a positive integer"),
    ("bench.seed=-3", "bench.seed=-3 is invalid"),
    ("suite.max_steps=abc", "suite.max_steps='abc' is not an integer"),
    ("run.episodes_per_task=abc", "run.episodes_per_task must be a positive integer"),
    ("run.max_steps=0", "run.max_steps must be a positive integer"),
    ("+run.nme=x", "unknown setting run.nme (did you mean run.name?); valid: run.name"),
    ("+bench.cals=3", "unknown setting bench.cals"),
    ("run.nme=x", "unknown setting run.nme (did you mean run.name?); valid: run.name"),
    ("run.output_dir=''", "run.output_dir='' is invalid"),
    ("run.name=''", "run.name is empty"),
    ("run.name=..", "run.name='..' is not allowed"),
    ("run.name=../x", "run.name='../x' is not allowed"),
    ("run.device=gpu", "valid: auto, cpu, cuda"),
    ("run.device=cuda:x", "run.device='cuda:x' is invalid"),
])
def test_wrong_types_and_ranges_are_refused_at_the_boundary(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")
                       .replace("[", r"\[").replace(".", r"\.")):
        compose([*FAST, override])


@pytest.mark.parametrize("value,message", [
    ("abc", "pruner.retention='abc' is not a number"),
    ("1.5", "pruner.retention=1.5 is invalid; valid: a fraction in (0, 1]"),
    ("0", "pruner.retention=0 is invalid"),
    ("-0.5", "pruner.retention=-0.5 is invalid"),
    ("true", "pruner.retention=True is not a number"),
])
def test_pruner_retention_must_be_a_fraction(value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        compose([*FAST, "pruner=fastv", f"pruner.retention={value}"])
    assert compose([*FAST, "pruner=fastv", "pruner.retention=0.25"]).pruner.retention == 0.25


@pytest.mark.parametrize("name", ["it's", "ünï", "a\"b"])
def test_unquoted_odd_run_names_explain_the_hydra_quoting(name):
    with pytest.raises(ConfigError, match=r"LexerNoViableAltException.*quote values.*run\.name='my run'"):
        compose([*FAST, f"run.name={name}"])


@pytest.mark.parametrize("quoted,name", [("'a b'", "a b"), ("'ünï'", "ünï"), ('"it\'s"', "it's")])
def test_quoted_run_names_with_spaces_quotes_and_unicode_work(tmp_path, quoted, name):
    cfg = compose([*FAST, f"run.name={quoted}", f"run.output_dir='{tmp_path}/with space'",
                   "run.episodes_per_task=1", "suite.tasks=[0]"])
    run_from_config(cfg)
    assert (tmp_path / "with space" / name / "episodes.csv").exists()


@pytest.mark.parametrize("args,message", [
    (["run", *FAST, "run.seed=abc"], "run.seed='abc' is not an integer"),
    (["run", *FAST, "run.quiet=maybe"], "run.quiet='maybe' is not a boolean"),
    (["run", *FAST, "run.name=it's"], "quote values"),
    (["bench", "model=test-zero", "bench.calls=abc"], "bench.calls='abc' is not an integer"),
    (["compare", "results"], "Missing argument 'new_dir'"),
    (["compare", "a", "b", "--alpha", "2"], "compare --alpha 2 is invalid; valid: a significance level in (0, 1)"),
    (["compare", "a", "b", "--max-sr-drop", "-5"], "compare --max-sr-drop -5 is invalid"),
    (["compare", "a", "b", "--max-latency-increase", "-1"], "compare --max-latency-increase -1 is invalid"),
    (["report", "results", "--out", "/proc/x"], "report --out /proc/x: cannot write there"),
    (["list", "--bogus"], "No such option: --bogus"),
    (["run", *FAST, "run.env_workers=2", "run.batch=0"], "run.batch=0 is invalid; valid: an integer from 1 to 256"),
    (["run", *FAST, "run.env_workers=2", "run.batch=abc"], "run.batch='abc' is not an integer"),
    (["run", *FAST, "run.env_workers=2", "run.batch_wait_ms=-1"], "run.batch_wait_ms=-1 is invalid; valid: a number"),
    (["run", *FAST, "run.batch=2"], "run.batch=2 batches the calls of several simulator workers: set run.env_workers >= 2"),
    (["run", "model=oracle", "suite=libero_spatial", "run.quiet=true", "run.env_workers=2", "run.batch=2"],
     "run.batch=2: oracle reads the live simulator"),
    (["run", *FAST, "run.env_workers=many"], "run.env_workers='many' is not an integer"),
])
def test_cli_bad_inputs_are_one_line_exit_2_and_create_nothing(tmp_path, args, message):
    extra = [f"run.output_dir={tmp_path}/out"] if args[0] == "run" else []
    res = run_cli(*args, *extra)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vlabench: error: ") and message in lines[0], res.stderr
    assert not (tmp_path / "out").exists()


def test_report_out_naming_a_file_is_refused(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    res = run_cli("report", str(tmp_path), "--out", str(f))
    assert res.returncode == 2 and res.stderr.strip() == (
        f"vlabench: error: report --out {f}: is a file; give a directory for the report, runs.csv and plots")
    assert f.read_text() == "x"


@pytest.mark.parametrize("out,message", [
    ("/proc/x/b.json", "bench.out=/proc/x/b.json: /proc/x is not a writable directory"),
    ("{tmp}", "is not a file name"),
])
def test_bench_out_must_be_a_writable_file_name(tmp_path, out, message):
    from vlabench.commands.options import check_output_file

    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        check_output_file("bench.out", out.format(tmp=tmp_path))
    check_output_file("bench.out", str(tmp_path / "b.json"))
