"""Camera frames -> the model's input images, torch-free so a simulator worker can do it.

`FrameRecipe` is what a policy tells its simulator workers (run.env_workers > 1): the cameras,
the size and the reference pipeline. A worker prepares each observation's frames before it
sends the call (`prepare_observation`), so the policy's process, which batches the workers'
calls, never waits on image preprocessing; the policy uses the prepared frames as they are
(bit-identical: the same functions run) and records the worker's time as the call's
`lat_preprocess_ms`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

import numpy as np

from vlabench.core.contracts import Observation
from vlabench.models import tf_image


def policy_image(img: np.ndarray, size: int = 224, center_crop: bool = True,
                 crop_scale: float = 0.9, resize: str = "lanczos", jpeg: bool = True) -> np.ndarray:
    """HxWx3 uint8 -> size x size x 3 uint8 as the reference evaluation feeds the model.

    LIBERO (OpenVLA/OFT): TF's JPEG round trip, lanczos3 + antialias resize, optional centre
    crop, reproduced pixel for pixel by `tf_image` (fixture test: tests/test_models_preprocess.py).
    SIMPLER (SimplerEnv): `resize="area"` (cv2.INTER_AREA), `jpeg=False`, no crop."""
    arr = np.ascontiguousarray(img, dtype=np.uint8)
    if resize == "area":
        import cv2

        arr = cv2.resize(arr, (size, size), interpolation=cv2.INTER_AREA)
    if jpeg:
        arr = tf_image.jpeg_round_trip(arr)
    if resize != "area":
        arr = tf_image.resize_uint8(arr, size)
    if center_crop:
        arr = tf_image.center_crop_uint8(arr, crop_scale)
    return arr


def resize_with_pad(img: np.ndarray, size: int) -> np.ndarray:
    """openpi_client `_resize_with_pad_pil`: keep the aspect ratio, PIL bilinear, zero padding."""
    h, w = img.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(img, dtype=np.uint8)
    from PIL import Image

    ratio = max(w / size, h / size)
    rw, rh = int(w / ratio), int(h / ratio)
    small = Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8)).resize((rw, rh), Image.BILINEAR)
    canvas = Image.new(small.mode, (size, size), 0)
    canvas.paste(small, (max(0, int((size - rw) / 2)), max(0, int((size - rh) / 2))))
    return np.asarray(canvas)


@dataclasses.dataclass(frozen=True)
class FrameRecipe:
    """How a policy prepares its cameras' frames: `kind` "prismatic" (`policy_image`, the
    OpenVLA/OFT LIBERO or SIMPLER pipeline) or "pi0" (openpi's resize with padding)."""

    cameras: tuple[str, ...]
    size: int
    kind: str = "prismatic"
    center_crop: bool = True
    resize: str = "lanczos"
    jpeg: bool = True

    def prepare(self, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.kind == "pi0":
            return {c: resize_with_pad(images[c], self.size) for c in self.cameras}
        return {c: policy_image(images[c], self.size, self.center_crop, resize=self.resize, jpeg=self.jpeg)
                for c in self.cameras}


class LazyFrames(Mapping):
    """camera -> prepared frame, each prepared on first access and kept: what a pruner that
    remembers open-loop frames (SpecPrune-VLA) gets, so only the frames it reads are prepared."""

    def __init__(self, recipe: FrameRecipe, images: dict[str, np.ndarray]):
        self.recipe, self.raw, self.done = recipe, images, {}

    def __getitem__(self, camera: str) -> np.ndarray:
        if camera not in self.done:
            if camera not in self.recipe.cameras:
                raise KeyError(camera)
            self.done[camera] = FrameRecipe.prepare(
                dataclasses.replace(self.recipe, cameras=(camera,)), self.raw)[camera]
        return self.done[camera]

    def __iter__(self):
        return iter(self.recipe.cameras)

    def __len__(self) -> int:
        return len(self.recipe.cameras)


def prepare_observation(recipe: FrameRecipe, obs: Observation) -> Observation:
    """`obs` with its frames prepared (`Observation.prepared`, the time in `prepared_ms`) and
    the raw frames of those cameras dropped (the policy reads only the prepared ones)."""
    t0 = time.perf_counter()
    frames = recipe.prepare(obs.images)
    ms = (time.perf_counter() - t0) * 1000.0
    rest = {k: v for k, v in obs.images.items() if k not in frames}
    return dataclasses.replace(obs, images=rest, prepared=frames, prepared_ms=ms)
