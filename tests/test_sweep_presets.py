"""Paper presets (`+experiment=NAME`): each expands to exactly the runs that fill its table."""

from __future__ import annotations

import pytest

from conftest import run_cli
from vlabench import sweep
from vlabench.report import layouts
from vlabench.report.runs import canonical_pruner, model_family

L4 = ["libero_spatial", "libero_object", "libero_goal", "libero_10"]
VA, VM, BRIDGE = "simpler_google_va", "simpler_google_vm", "simpler_bridge"
R3 = [0.5, 0.25, 0.125]


def ident(job) -> tuple:
    c = job.cfg
    ret = None if c.pruner.name == "none" else c.pruner.get("retention")
    return (str(c.model.name), str(c.pruner.name), ret, str(c.suite.name))


def expand(name: str, *overrides: str):
    return sweep.jobs_for(sweep.split_request([f"+experiment={name}", *overrides]), False)[0]


# hand-worked from the papers' tables (see each preset's header for the rows left out)
EXPECTED = {
    "vla-pruner-table1": (
        [("openvla-oft", "none", None, s) for s in L4]
        + [("openvla-oft", p, r, s) for p in ("fastv", "sparsevlm", "divprune", "vla-pruner")
           for r in R3 for s in L4]
        + [("openvla-oft", "vla-cache", None, s) for s in L4]),
    "vla-pruner-table2": (
        [("openvla", p, None, s) for p in ("none", "vla-cache") for s in (VA, VM)]
        + [("openvla", p, 0.25, s) for p in ("fastv", "vla-pruner") for s in (VA, VM)]),
    "specprune-table1": [("openvla-oft", p, 0.5 if p == "sparsevlm" else None, s)
                         for p in ("none", "sparsevlm", "vla-cache", "efficientvla", "specprune")
                         for s in L4],
    "specprune-table2": [("openvla-oft", p, None, "libero_spatial") for p in ("none", "specprune")],
    "specprune-table3": [("openvla-oft", p, None, "libero_object") for p in ["none"] + ["specprune"] * 3],
    "sp-vla-table1": [("openvla", p, 0.5 if p == "sparsevlm" else None, s)
                      for p in ("none", "sparsevlm", "sp-vla")
                      for s in ("libero_goal", "libero_object", "libero_spatial", "libero_10")],
    "sp-vla-table3": (
        [("openvla", p, 0.5 if p in ("random", "fastv") else None, s)
         for p in ("none", "random", "fastv", "vla-cache", "efficientvla", "sp-vla") for s in (VM, VA)]
        + [("openvla", p, 0.5 if p == "random" else None, BRIDGE) for p in ("none", "random", "sp-vla")]),
    "nightly": [("openvla-oft", p, 0.25 if p == "vla-pruner-25" else None, "libero_spatial")
                for p in ("none", "vla-pruner-25", "specprune")],
}
# which layout each preset fills, its method order, and its columns' suites
LAYOUT = {
    "vla-pruner-table1": ("vla-pruner/1", layouts.VP_ORDER, L4, {"openvla", "openvla-oft"}),
    "vla-pruner-table2": ("vla-pruner/2", layouts.VP_ORDER, [VA, VM], {"openvla"}),
    "specprune-table1": ("specprune-vla/1", layouts.SPEC_ORDER, L4, {"openvla-oft"}),
    "specprune-table2": ("specprune-vla/2", layouts.SPEC_ORDER, ["libero_spatial"], {"openvla-oft"}),
    "specprune-table3": ("specprune-vla/3", layouts.SPEC_ORDER, ["libero_object"], {"openvla-oft"}),
    "sp-vla-table1": ("sp-vla/1", layouts.SP_ORDER, L4, {"openvla"}),
    "sp-vla-table3": ("sp-vla/3", layouts.SP_ORDER, [VA, VM, BRIDGE], None),
}


def test_every_rendered_table_has_a_preset():
    assert {v[0] for v in LAYOUT.values()} == set(layouts.LAYOUTS)
    assert set(sweep.preset_names()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_expands_to_the_runs_of_its_table(name):
    js = expand(name)
    assert sorted(map(ident, js), key=str) == sorted(EXPECTED[name], key=str)
    assert len({j.run_dir for j in js}) == len(js)
    assert all("experiment" not in j.cfg for j in js)
    if name in LAYOUT:
        _, order, suites, families = LAYOUT[name]
        for j in js:
            assert canonical_pruner(str(j.cfg.pruner.name), str(j.cfg.pruner.plugin)) in order
            assert str(j.cfg.suite.name) in suites
            assert families is None or model_family(str(j.cfg.model.name)) in families


def test_specprune_presets_use_its_own_protocol_and_table3_sweeps_alpha():
    for name in ("specprune-table1", "specprune-table2", "specprune-table3"):
        assert {str(j.cfg.suite.protocol) for j in expand(name)} == {"specprune"}
    alphas = [j.cfg.pruner.alpha.libero_object for j in expand("specprune-table3")
              if j.cfg.pruner.name == "specprune"]
    assert alphas == [1.0, 0.8, 0.6]


def test_nightly_runs_five_episodes_per_task():
    assert {j.cfg.run.episodes_per_task for j in expand("nightly")} == {5}


def test_user_overrides_apply_to_every_job_and_replace_the_presets_value():
    js = expand("vla-pruner-table1", "model=openvla-oft-tiny", "suite=libero_spatial", "suite.tasks=[0]",
                "run.episodes_per_task=1", "run.max_steps=8")
    assert sorted(map(ident, js), key=str) == sorted(
        [("openvla-oft-tiny", p, r, "libero_spatial") for m, p, r, s in EXPECTED["vla-pruner-table1"]
         if s == "libero_spatial"], key=str)
    assert all(list(j.cfg.suite.tasks) == [0] and j.cfg.run.max_steps == 8 for j in js)


def test_unknown_preset_is_one_line_naming_the_valid_ones():
    res = run_cli("run", "+experiment=vla-pruner-table9")
    assert res.returncode == 2
    assert res.stderr.strip() == ("vlabench: error: unknown experiment 'vla-pruner-table9'; valid: "
                                  + ", ".join(sorted(EXPECTED)))
