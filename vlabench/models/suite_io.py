"""What a suite offers an OpenVLA-family adapter: cameras, robot state, prompt, image pipeline.

Read from the suite's YAML so that one adapter serves every protocol:
- LIBERO (OpenVLA / OFT evaluation code): agentview + wrist, proprio, the
  `In: What action should the robot take to ...?\\nOut:` template, JPEG round trip, Lanczos
  resize to 224, 90% centre crop (the model config's `center_crop`).
- SIMPLER (SimplerEnv's openvla_model.py): one 3rd-view image, no robot state, the raw
  instruction as prompt, cv2 INTER_AREA resize to 224, no JPEG, no centre crop; on the Google
  robot (`action_convention.gripper: open_fraction`) the raw continuous gripper value, which
  SimplerEnv's sticky gripper reads (vlabench/suites/simpler_actions.py), instead of the
  LIBERO post-processing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vlabench.core.contracts import RAW_GRIPPER


@dataclass(frozen=True)
class SuiteIO:
    cameras: tuple[str, ...] | None = None  # camera keys the suite renders; None: any
    proprio: bool = True
    prompt_style: str = "template"          # "template" | "raw"
    resize: str = "lanczos"                 # "lanczos" | "area"
    jpeg: bool = True
    center_crop: bool | None = None         # None: the model config decides
    raw_gripper: bool = False               # emit the unnormalised gripper value, no LIBERO post-processing

    @classmethod
    def from_suite(cls, suite_cfg: Any) -> SuiteIO:
        if suite_cfg is None:
            return cls()
        get = suite_cfg.get
        cams = get("cameras")
        img = get("policy_image") or {}
        style = str(get("prompt_style") or "template")
        resize = str(img.get("resize", "lanczos"))
        if style not in ("template", "raw"):
            raise ValueError(f"suite.prompt_style={style!r}; valid: template, raw")
        if resize not in ("lanczos", "area"):
            raise ValueError(f"suite.policy_image.resize={resize!r}; valid: lanczos, area")
        return cls(
            cameras=tuple(cams) if cams is not None else None,
            proprio=bool(get("proprio", True)),
            prompt_style=style, resize=resize, jpeg=bool(img.get("jpeg", True)),
            center_crop=img.get("center_crop"),
            raw_gripper=(get("action_convention") or {}).get("gripper") == RAW_GRIPPER,
        )
