"""One adapter, several protocols: the suite decides cameras, robot state, prompt and image pipeline."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from omegaconf import OmegaConf  # noqa: E402

from vlabench.core import registry  # noqa: E402
from vlabench.core.contracts import Observation, TaskInfo  # noqa: E402
from vlabench.core.errors import ConfigError  # noqa: E402
from vlabench.models.preprocess import policy_image  # noqa: E402
from vlabench.models.suite_io import SuiteIO  # noqa: E402
from vlabench.models.tokenizer import WordTokenizer, prompt_ids  # noqa: E402

SIMPLER = OmegaConf.load(registry.entry("suite", "simpler_bridge").path)
LIBERO = OmegaConf.load(registry.entry("suite", "libero_spatial").path)


def _build(name: str, suite):
    cfg = OmegaConf.load(registry.entry("model", name).path)
    return registry.build("model", name, cfg, pruner=registry.build("pruner", "none", None),
                          suite_cfg=suite, device="cpu")


def _simpler_obs() -> Observation:
    rng = np.random.default_rng(0)
    return Observation("put carrot on plate", 0,
                       images={"agentview": rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)})


def test_oft_on_a_suite_without_wrist_camera_or_state_uses_one_image_and_no_proprio():
    oft = _build("openvla-oft-tiny", SIMPLER)
    assert oft.cameras == ("agentview",) and oft.needs == frozenset({"agentview"})
    assert any("no wrist camera" in d for d in oft.deviations)
    assert any("without its proprio token" in d for d in oft.deviations)
    oft.reset(TaskInfo(0, "carrot", "put carrot on plate"))
    out = oft.act(_simpler_obs())
    assert out.actions.shape == (8, 7) and out.stats.tokens_in == 256
    assert oft.info().num_visual == 256


def test_oft_on_libero_keeps_both_images_and_proprio():
    oft = _build("openvla-oft-tiny", LIBERO)
    assert oft.cameras == ("agentview", "wrist") and "proprio" in oft.needs
    assert not any("camera" in d or "proprio" in d for d in oft.deviations)


def test_simpler_prompt_is_the_raw_instruction_and_libero_uses_the_template():
    tok = WordTokenizer()
    raw = prompt_ids(tok, "put carrot on plate", SuiteIO.from_suite(SIMPLER).prompt_style)
    templ = prompt_ids(tok, "put carrot on plate", SuiteIO.from_suite(LIBERO).prompt_style)
    assert raw == tok.encode("put carrot on plate") + [29871]
    assert templ == tok.encode("In: What action should the robot take to put carrot on plate?\nOut:") + [29871]


def test_simpler_images_are_area_resized_without_jpeg_or_crop():
    import cv2

    io = SuiteIO.from_suite(SIMPLER)
    assert (io.resize, io.jpeg, io.center_crop) == ("area", False, False)
    img = _simpler_obs().images["agentview"]
    out = policy_image(img, 224, center_crop=False, resize=io.resize, jpeg=io.jpeg)
    assert np.array_equal(out, cv2.resize(img, (224, 224), interpolation=cv2.INTER_AREA))


def test_a_suite_without_the_models_main_camera_is_refused():
    suite = OmegaConf.create(OmegaConf.to_container(SIMPLER))
    suite.cameras = {"wrist": "hand_camera"}
    with pytest.raises(ConfigError, match="needs camera 'agentview'"):
        _build("openvla-tiny", suite)


def test_open_loop_frames_reach_only_pruners_that_observe_them():
    from vlabench.models.synthetic import synthetic_observation
    from vlabench.pruners.base import Pruner

    class Watcher(Pruner):
        observes_frames = True

        def __init__(self):
            super().__init__()
            self.seen = []

        def observe_frame(self, step, images):
            self.seen.append((step, {c: im.shape for c, im in images.items()}))

    cfg = OmegaConf.load(registry.entry("model", "openvla-oft-tiny").path)
    w = Watcher()
    pol = registry.build("model", "openvla-oft-tiny", cfg, pruner=w, suite_cfg=LIBERO, device="cpu")
    pol.observe(synthetic_observation(1, step=3))
    assert w.seen == [(3, {"agentview": (224, 224, 3), "wrist": (224, 224, 3)})]
    quiet = registry.build("model", "openvla-oft-tiny", cfg, pruner=Pruner(), suite_cfg=LIBERO, device="cpu")
    quiet.observe(synthetic_observation(1, step=3))     # no pruner wants frames: nothing to do
