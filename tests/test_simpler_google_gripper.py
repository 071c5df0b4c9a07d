"""The Google robot's sticky gripper in its two published variants (issue 25), and CogACT's
WidowX gripper.

- every_step: DelinQu/SimplerEnv-OpenVLA@2905379 simpler_env/policies/openvla/openvla_model.py
  L117-138 (repeat 15, L30), the OpenVLA family's;
- on_latch: microsoft/CogACT@b174a1b sim_cogact/cogact_policy.py:166-191 (repeat 10, L58), where
  the per-step update of the previous gripper value is commented out (L174-175) and it moves
  only on the first step and on a latch (L171, L180).
Both are transcribed literally below and StickyGripper is held to them; hand-worked traces pin
where the two differ."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import ROOT
from omegaconf import OmegaConf

from vlabench.suites.simpler_actions import StickyGripper, widowx_gripper


def openvla_reference(opens: list[float], num_repeat: int) -> list[float]:
    """openvla_model.py L117-138 (@2905379), state as in its reset()."""
    previous, sticky_on, repeat, sticky = None, False, 0, 0.0
    out = []
    for o in opens:
        current = np.array([o])
        if previous is None:
            relative = np.array([0])
        else:
            relative = previous - current
        previous = current
        if np.abs(relative) > 0.5 and (not sticky_on):
            sticky_on, sticky = True, relative
        if sticky_on:
            repeat += 1
            relative = sticky
        if repeat == num_repeat:
            sticky_on, repeat, sticky = False, 0, 0.0
        out.append(float(np.asarray(relative).reshape(-1)[0]))
    return out


def cogact_reference(opens: list[float], num_repeat: int) -> list[float]:
    """cogact_policy.py:166-191 (@b174a1b), state as in its reset() (L112-115)."""
    previous, sticky_on, repeat, sticky = None, False, 0, 0.0
    out = []
    for o in opens:
        current = np.array([o])
        if previous is None:
            relative = np.array([0])
            previous = current
        else:
            relative = previous - current
        # fix a bug in the SIMPLER code here
        # previous = current
        if np.abs(relative) > 0.5 and (not sticky_on):
            sticky_on, sticky = True, relative
            previous = current
        if sticky_on:
            repeat += 1
            relative = sticky
        if repeat == num_repeat:
            sticky_on, repeat, sticky = False, 0, 0.0
        out.append(float(np.asarray(relative).reshape(-1)[0]))
    return out


def run(gripper: StickyGripper, opens: list[float]) -> list[float]:
    return [gripper(o, "open_fraction") for o in opens]


# Worked by hand with repeat 3: a gradual close, a hold, then a re-open that arrives while the
# close is still latched (step 6).
OPENS = [1.0, 0.8, 0.6, 0.6, 0.3, 0.3, 1.0, 1.0, 1.0, 1.0]
# every_step: rel = the last step's change; only the re-open's jump (-0.7) latches.
SENT_EVERY_STEP = [0.0, 0.2, 0.2, 0.0, 0.3, 0.0, -0.7, -0.7, -0.7, 0.0]
# on_latch: rel = drift from 1.0 (0.2, 0.4, 0.4, 0.7): the close latches at step 4 (prev -> 0.3);
# the re-open inside the latch is not lost: released at step 6, it latches -0.7 at step 7.
SENT_ON_LATCH = [0.0, 0.2, 0.4, 0.4, 0.7, 0.7, 0.7, -0.7, -0.7, -0.7]


def test_every_step_variant_matches_the_hand_worked_trace():
    np.testing.assert_allclose(run(StickyGripper(3, "every_step"), OPENS), SENT_EVERY_STEP, atol=1e-12)


def test_on_latch_variant_matches_the_hand_worked_trace():
    np.testing.assert_allclose(run(StickyGripper(3, "on_latch"), OPENS), SENT_ON_LATCH, atol=1e-12)


def test_a_gradual_close_latches_only_on_latch():
    opens = [1.0, 0.7, 0.4, 0.1, 0.1, 0.1, 0.1]
    np.testing.assert_allclose(run(StickyGripper(3, "every_step"), opens),
                               [0.0, 0.3, 0.3, 0.3, 0.0, 0.0, 0.0], atol=1e-12)
    # drift 0.3, then 0.6 latches (prev -> 0.4) for 3 steps; then 0.4 - 0.1 = 0.3 on every step
    np.testing.assert_allclose(run(StickyGripper(3, "on_latch"), opens),
                               [0.0, 0.3, 0.6, 0.6, 0.6, 0.3, 0.3], atol=1e-12)


def test_a_binary_close_then_open_with_each_protocols_repeat():
    opens = [1.0, 1.0] + [0.0] * 18 + [1.0] * 18
    openvla = run(StickyGripper(15, "every_step"), opens)
    cogact = run(StickyGripper(10, "on_latch"), opens)
    assert openvla == [0.0] * 2 + [1.0] * 15 + [0.0] * 3 + [-1.0] * 15 + [0.0] * 3
    assert cogact == [0.0] * 2 + [1.0] * 10 + [0.0] * 8 + [-1.0] * 10 + [0.0] * 8


def ensemble_like(rng: np.random.Generator, n: int) -> list[float]:
    """Open values as CogACT's adaptive ensemble gives them: weighted means of binarised 0/1
    predictions (horizon 2), so mostly 0 or 1 with steps in between."""
    binary = (rng.random(n + 1) < 0.5).astype(float)
    w = rng.uniform(0.3, 0.7, n)
    mixed = w * binary[1:] + (1 - w) * binary[:-1]
    return [float(x) for x in np.where(rng.random(n) < 0.6, binary[1:], mixed)]


@pytest.mark.parametrize("repeat", [1, 3, 10, 15])
def test_both_variants_equal_their_transcribed_reference(repeat):
    rng = np.random.default_rng(repeat)
    for _ in range(50):
        opens = ensemble_like(rng, 60) if rng.random() < 0.5 else [float(x) for x in rng.random(60)]
        assert run(StickyGripper(repeat, "every_step"), opens) == openvla_reference(opens, repeat)
        assert run(StickyGripper(repeat, "on_latch"), opens) == cogact_reference(opens, repeat)


def test_the_two_references_differ_on_these_sequences():
    """So the test above can tell the variants apart."""
    rng = np.random.default_rng(0)
    opens = ensemble_like(rng, 200)
    assert openvla_reference(opens, 10) != cogact_reference(opens, 10)
    assert openvla_reference(OPENS, 3) == pytest.approx(SENT_EVERY_STEP)
    assert cogact_reference(OPENS, 3) == pytest.approx(SENT_ON_LATCH)


@pytest.mark.parametrize("repeat,prev_update,match", [
    (0, "on_latch", "repeat=0; valid: an integer >= 1"), (2.5, "on_latch", "repeat=2.5"),
    (None, "every_step", "repeat=None"), (10, "always", "valid: every_step, on_latch"),
])
def test_bad_settings_name_the_valid_ones(repeat, prev_update, match):
    with pytest.raises(ValueError, match=match):
        StickyGripper(repeat, prev_update)


def test_reset_forgets_the_latch_and_the_previous_value():
    s = StickyGripper(10, "on_latch")
    run(s, [1.0, 0.0, 0.0])
    s.reset()
    assert run(s, [0.0, 0.0, 1.0]) == [0.0, 0.0, -1.0]


def test_cogact_on_bridge_sends_its_adapters_widowx_gripper():
    """cogact_policy.py:193-194: `2.0 * (open_gripper > 0.5) - 1.0` on the ensembled open value;
    vlabench: CogACTPolicy._gripper (the LIBERO post-processing on simpler_bridge, whose
    `action_convention.gripper` is close_positive), then the suite's widowx_gripper."""
    pytest.importorskip("torch")
    from vlabench.models.cogact.policy import CogACTPolicy
    from vlabench.models.suite_io import SuiteIO

    suite = OmegaConf.load(ROOT / "configs/suite/simpler_bridge.yaml")
    policy = SimpleNamespace(io=SuiteIO.from_suite(suite))
    conv = str(suite.action_convention.gripper)
    opens = [0.0, 1.0, 0.5, np.nextafter(0.5, 1.0), np.nextafter(0.5, 0.0), 0.3, 0.7, 0.45, 0.55,
             *np.random.default_rng(1).random(200)]
    for o in opens:
        a = np.array([[0.01, 0.0, 0.0, 0.0, 0.0, 0.0, o]])
        sent = widowx_gripper(CogACTPolicy._gripper(policy, a)[0, 6], conv)
        assert sent == 2.0 * (o > 0.5) - 1.0, o
