"""Paper presets (`+experiment=NAME`): each expands to exactly the runs that fill its table."""

from __future__ import annotations

import pytest
from conftest import run_cli

from vlabench.launch import sweep
from vlabench.report import layouts, tables_vp
from vlabench.report.runs import canonical_pruner, model_family

L4 = ["libero_spatial", "libero_object", "libero_goal", "libero_10"]
VA, VM, BRIDGE = "simpler_google_va", "simpler_google_vm", "simpler_bridge"
R3 = [0.5, 0.25, 0.125]
SP4 = ["libero_goal", "libero_object", "libero_spatial", "libero_10"]
SP_ONE_MOVED = [("pruner.v_min", 0.25), ("pruner.v_min", 0.15), ("pruner.v_max", 0.625), ("pruner.v_max", 0.375),
                ("pruner.tau", 0.625), ("pruner.tau", 0.375), ("pruner.buffer", 8), ("pruner.buffer", 4)]


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
    "sp-vla-table1": [("openvla", p, {"sparsevlm": 0.5, "fopru": 0.715, "prumerge": 0.665}.get(p), s)
                      for p in ("none", "sparsevlm", "fopru", "prumerge", "fastvlm", "visionzip", "sp-vla")
                      for s in ("libero_goal", "libero_object", "libero_spatial", "libero_10")],
    "sp-vla-table3": (
        [("cogact", p, 0.5 if p in ("random", "fastv") else None, s)
         for p in ("none", "random", "fastv", "vla-cache", "efficientvla", "sp-vla") for s in (VM, VA)]
        + [("cogact", p, 0.5 if p == "random" else None, BRIDGE) for p in ("none", "random", "sp-vla")]),
    "vla-pruner-table3": (
        [("openvla", p, 0.5 if p.startswith("efficientvla") else None, s)
         for p in ("none", "efficientvla-nolayer", "efficientvla-skip8", "vtw", "fitprune") for s in L4]
        + [("openvla", "vla-pruner", 0.25, s) for s in L4]),
    "vla-pruner-table4": (
        [("pi0", "none", None, s) for s in L4]
        + [("pi0", p, r, s) for p in ("fastv", "sparsevlm", "divprune", "vla-pruner") for r in R3 for s in L4]
        + [("pi0", "vla-cache", None, s) for s in L4]),
    "vla-pruner-table5": ([("openvla", "none", None, "libero_spatial")]
                          + [("openvla", p, r, "libero_spatial")
                             for p in ("fastv", "sparsevlm", "divprune", "vla-pruner") for r in R3]),
    "vla-pruner-table6": ([("openvla", "none", None, s) for s in L4]
                          + [("openvla", "vla-pruner", 0.25, s) for _ in range(5) for s in L4]),
    "sp-vla-table2": [("openvla", p, None, s) for p in ("none", "sp-vla", "sp-vla-no-pruning",
                                                        "sp-vla-no-scheduling", "sp-vla-no-canny") for s in SP4],
    "sp-vla-table6": [("openvla", p, None, s) for p in ("none", "sp-vla") for s in SP4],
    "sp-vla-table5": [("cogact", p, None, s) for p in ("none", "sp-vla") for s in (VM, BRIDGE)],
    "sp-vla-table7": [("cogact", p, None, s) for p in ("none", "sp-vla") for s in (VM, VA, BRIDGE)],
    "sp-vla-table8": [("openvla", p, None, s) for p in ["none", "sp-vla"] + ["sp-vla"] * 8 for s in SP4],
    "specprune-table4": [("openvla-oft", "specprune", None, s) for s in L4],
    "latency-aware": [("openvla-oft", p, r, s) for p, r in (("none", None), ("fastv", 0.25),
                      ("vla-pruner-25", 0.25), ("specprune", None), ("sp-vla", None))
                      for s in L4 for _mode in ("frozen", "sync", "async")],
    "nightly": [("openvla-oft", p, 0.25 if p == "vla-pruner-25" else None, "libero_spatial")
                for p in ("none", "vla-pruner-25", "specprune")],
}
# which layouts each preset fills, their method order, and their columns' suites
T3_ORDER = ["none", "vla-pruner", "efficientvla", "vtw", "fitprune"]
LAYOUT = {
    "vla-pruner-table1": (["vla-pruner/1"], layouts.VP_ORDER, L4, {"openvla", "openvla-oft"}),
    "vla-pruner-table2": (["vla-pruner/2"], layouts.VP_ORDER, [VA, VM], {"openvla"}),
    "vla-pruner-table3": (["vla-pruner/3"], T3_ORDER, L4, {"openvla"}),
    "vla-pruner-table4": (["vla-pruner/4"], layouts.VP_ORDER, L4, {"pi0"}),
    "vla-pruner-table5": (["vla-pruner/5"], ["none"] + tables_vp.VP_T5_ORDER, L4, {"openvla"}),
    "vla-pruner-table6": (["vla-pruner/6"], ["none", "vla-pruner"], L4, {"openvla"}),
    "specprune-table1": (["specprune-vla/1"], layouts.SPEC_ORDER, L4, {"openvla-oft"}),
    "specprune-table2": (["specprune-vla/2"], layouts.SPEC_ORDER, ["libero_spatial"], {"openvla-oft"}),
    "specprune-table3": (["specprune-vla/3"], layouts.SPEC_ORDER, ["libero_object"], {"openvla-oft"}),
    "specprune-table4": (["specprune-vla/4"], ["specprune"], L4, {"openvla-oft"}),
    "sp-vla-table1": (["sp-vla/1"], layouts.SP_T1_ORDER, L4, {"openvla"}),
    "sp-vla-table2": (["sp-vla/2", "sp-vla/9"], ["none", "sp-vla"], L4, {"openvla"}),
    "sp-vla-table3": (["sp-vla/3"], layouts.SP_T3_ORDER, [VA, VM, BRIDGE], None),
    "sp-vla-table6": (["sp-vla/6"], ["none", "sp-vla"], L4, {"openvla"}),
    "sp-vla-table7": (["sp-vla/7"], ["none", "sp-vla"], [VA, VM, BRIDGE], None),
    "sp-vla-table8": (["sp-vla/8", "sp-vla/10", "sp-vla/11"], ["none", "sp-vla"], L4, {"openvla"}),
}


# tables no vlabench model can fill yet (their layouts and published numbers are there)
NO_PRESET: dict[str, str] = {}


def test_every_rendered_table_has_a_preset():
    assert {k for v in LAYOUT.values() for k in v[0]} | set(NO_PRESET) == set(layouts.LAYOUTS)
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


def test_table6_sweeps_the_pruning_layer_and_table8_moves_one_parameter_per_run():
    ks = sorted({j.cfg.pruner.prune_layer for j in expand("vla-pruner-table6") if j.cfg.pruner.name != "none"})
    assert ks == [2, 3, 4, 5, 6]
    centre = {"pruner.v_min": 0.2, "pruner.v_max": 0.5, "pruner.tau": 0.5, "pruner.buffer": 6}
    moved = []
    for j in expand("sp-vla-table8"):
        if j.cfg.pruner.name == "sp-vla":
            got = {k: j.cfg.pruner[k.split(".")[1]] for k in centre}
            moved += [(k, v) for k, v in got.items() if v != centre[k]]
            assert sum(v != centre[k] for k, v in got.items()) <= 1
    assert sorted(moved, key=str) == sorted(SP_ONE_MOVED * 4, key=str)


def test_table3_and_table2_presets_run_the_ablation_settings_the_report_tells_apart():
    from vlabench.report.settings import efficientvla_row, sp_ablation

    class _Run:
        def __init__(self, cfg):
            self.config, self.suite = {"pruner": dict(cfg)}, "libero_spatial"
    rows = {str(j.cfg.pruner.name): efficientvla_row(_Run(j.cfg.pruner)) for j in expand("vla-pruner-table3")
            if str(j.cfg.pruner.name).startswith("efficientvla")}
    assert rows == {"efficientvla-nolayer": "w/o layer", "efficientvla-skip8": ""}
    abl = {str(j.cfg.pruner.name): sp_ablation(_Run(j.cfg.pruner)) for j in expand("sp-vla-table2")
           if str(j.cfg.pruner.name) != "none"}
    assert abl == {"sp-vla": "", "sp-vla-no-pruning": "w/o Pruning", "sp-vla-no-scheduling": "w/o Scheduling",
                   "sp-vla-no-canny": "w/o Canny"}


def test_nightly_runs_five_episodes_per_task():
    assert {j.cfg.run.episodes_per_task for j in expand("nightly")} == {5}


def test_user_overrides_apply_to_every_job_and_replace_the_presets_value():
    js = expand("vla-pruner-table1", "model=openvla-oft-tiny", "suite=libero_spatial", "suite.tasks=[0]",
                "run.episodes_per_task=1", "run.max_steps=8")
    assert sorted(map(ident, js), key=str) == sorted(
        [("openvla-oft-tiny", p, r, "libero_spatial") for m, p, r, s in EXPECTED["vla-pruner-table1"]
         if s == "libero_spatial"], key=str)
    assert all(list(j.cfg.suite.tasks) == [0] and j.cfg.run.max_steps == 8 for j in js)


def test_table4_preset_runs_only_pruners_pi0_has_and_shrinks_to_pi0_tiny():
    from vlabench.models.pi0.policy import SUPPORTED_PRUNERS
    assert {str(j.cfg.pruner.name) for j in expand("vla-pruner-table4")} <= set(SUPPORTED_PRUNERS)
    js = expand("vla-pruner-table4", "model=pi0-tiny", "suite=libero_spatial", "suite.tasks=[0]",
                "run.episodes_per_task=1", "run.max_steps=16")
    assert sorted(map(ident, js), key=str) == sorted(
        [("pi0-tiny", p, r, "libero_spatial") for m, p, r, s in EXPECTED["vla-pruner-table4"]
         if s == "libero_spatial"], key=str)
    assert len(js) == 1 + 4 * 3 + 1


def test_unknown_preset_is_one_line_naming_the_valid_ones():
    res = run_cli("run", "+experiment=vla-pruner-table9")
    assert res.returncode == 2
    assert res.stderr.strip() == ("vlabench: error: unknown experiment 'vla-pruner-table9'; valid: "
                                  + ", ".join(sorted(EXPECTED)))
