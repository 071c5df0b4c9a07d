"""`run.video=none|failures|all`: an MP4 per episode of the agentview camera.

During an episode the loop hands every observation to `EpisodeFrames.add` (the frame after
reset, then one after each executed step: steps + 1 frames), which keeps a copy of the agentview
image with the step, the action that led to it and the tokens the last policy call kept. After
the episode's records are committed, `write` turns the frames of a kept episode (every one with
`all`, failed ones with `failures`) into `<run dir>/videos/task<T>_ep<E>_<success|failure>.mp4`,
the overlay drawn in a band under the (upscaled) image. Encoding uses imageio-ffmpeg's ffmpeg
(H.264, plays in browsers) when installed, else OpenCV's MPEG-4 part 2 writer (plays in VLC and
most desktop players, not inline in browsers). A file is written under a temporary name and
renamed when complete; an encoding error is one line on stderr and the run goes on.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlabench.records import fsio

MODES = ("none", "failures", "all")
CAMERA = "agentview"
VIDEO_DIR = "videos"
FPS = 20            # LIBERO's control rate; one frame per control step
MIN_WIDTH = 384     # smaller renders are upscaled (integer factor) so the overlay stays legible
BAND = 40           # pixels of overlay text under the image


def mode_of(cfg: Any) -> str:
    """The run's video mode ("none" when unset or null)."""
    v = cfg.run.get("video") if cfg is not None else None
    return "none" if v is None or v is False else str(v)


def video_name(task_id: int, episode: int, success: bool) -> str:
    return f"task{task_id}_ep{episode}_{'success' if success else 'failure'}.mp4"


def _copy(img: np.ndarray) -> np.ndarray:
    """A copy of an image that may be a flipped view (LIBERO flips both axes): the flipped axes
    are copied in memory order (a plain copy of a negative-stride view is ~500x slower)."""
    img = np.asarray(img)
    axes = tuple(i for i, s in enumerate(img.strides) if s < 0)
    if not axes:
        return img.copy()
    return np.flip(np.flip(img, axes).copy(), axes)


@dataclass
class Frame:
    image: np.ndarray
    step: int
    action: np.ndarray | None
    tokens_kept: int | None


@dataclass
class Pending:
    """A kept episode's frames, to be encoded once its records are committed."""

    name: str
    frames: list[Frame]
    max_steps: int


@dataclass
class EpisodeFrames:
    """Frames of the running episode (see the module docstring)."""

    mode: str
    frames: list[Frame] = field(default_factory=list)
    max_steps: int = 0
    missing: int = 0    # observations without an agentview image
    warned: bool = False

    def begin(self, max_steps: int) -> None:
        self.frames, self.max_steps = [], max_steps

    def add(self, obs: Any, step: int, action: Any, tokens_kept: Any) -> None:
        img = obs.images.get(CAMERA) if obs.images else None
        if img is None:
            self.missing += 1
            return
        self.frames.append(Frame(_copy(img), step,
                                 None if action is None else np.asarray(action, dtype=float),
                                 None if tokens_kept is None else int(tokens_kept)))

    def take(self, task_id: int, episode: int, success: bool) -> Pending | None:
        """The finished episode's frames when the mode keeps it (None otherwise); clears them."""
        frames, self.frames = self.frames, []
        keep = self.mode == "all" or (self.mode == "failures" and not success)
        if keep and not frames and self.missing and not self.warned:
            self.warned = True
            print(f"vlabench: run.video: the suite rendered no {CAMERA} image, so no video is "
                  f"written", file=sys.stderr, flush=True)
        if not keep or not frames:
            return None
        return Pending(video_name(task_id, episode, success), frames, self.max_steps)


def overlay_lines(f: Frame, max_steps: int) -> tuple[str, str]:
    kept = "-" if f.tokens_kept is None else str(f.tokens_kept)
    act = "-" if f.action is None else " ".join(f"{a:+.2f}" for a in f.action.ravel())
    return f"step {f.step}/{max_steps}  tokens kept {kept}", f"action {act}"


def compose(f: Frame, max_steps: int) -> np.ndarray:
    """The RGB frame as written: the image upscaled to >= MIN_WIDTH, the overlay band below,
    both sides even (H.264's 4:2:0 sampling)."""
    import cv2

    img = np.ascontiguousarray(f.image, dtype=np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    h, w = img.shape[:2]
    k = max(1, math.ceil(MIN_WIDTH / w))
    if k > 1:
        img = cv2.resize(img, (w * k, h * k), interpolation=cv2.INTER_NEAREST)
    h, w = img.shape[:2]
    out = np.zeros((h + BAND + (h + BAND) % 2, w + w % 2, 3), np.uint8)
    out[:h, :w] = img[:, :, :3]
    for i, text in enumerate(overlay_lines(f, max_steps)):
        cv2.putText(out, text, (6, h + 16 + 17 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _encode_ffmpeg(path: Path, frames: list[np.ndarray]) -> None:
    import imageio_ffmpeg

    h, w = frames[0].shape[:2]
    gen = imageio_ffmpeg.write_frames(str(path), (w, h), fps=FPS, codec="libx264",
                                      pix_fmt_in="rgb24", macro_block_size=1,
                                      output_params=["-movflags", "+faststart"],
                                      ffmpeg_log_level="error")
    gen.send(None)
    try:
        for fr in frames:
            gen.send(np.ascontiguousarray(fr))
    finally:
        gen.close()


def _encode_cv2(path: Path, frames: list[np.ndarray]) -> None:
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (w, h))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot open an MPEG-4 writer")
    try:
        for fr in frames:
            writer.write(cv2.cvtColor(fr, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def encoder() -> str:
    """"ffmpeg" (imageio-ffmpeg, H.264) when installed, else "opencv" (MPEG-4 part 2)."""
    import importlib.util

    return "ffmpeg" if importlib.util.find_spec("imageio_ffmpeg") is not None else "opencv"


def write(run_dir: Path | str, pending: Pending | None) -> Path | None:
    """Encode `pending` into run_dir/videos/<name> (None: nothing kept). Never raises: an error
    is one line on stderr (the episode's records are already safe)."""
    if pending is None:
        return None
    folder = Path(run_dir) / VIDEO_DIR
    target = folder / pending.name
    temp = folder / f".tmp-{os.getpid()}-{pending.name}"
    try:
        fsio.makedirs(folder)
        frames = [compose(f, pending.max_steps) for f in pending.frames]
        (_encode_ffmpeg if encoder() == "ffmpeg" else _encode_cv2)(temp, frames)
        fsio.replace(temp, target)
        return target
    except Exception as e:   # never fatal: the episode is committed already
        print(f"vlabench: could not write the video {target}: {type(e).__name__}: {e}",
              file=sys.stderr, flush=True)
        try:
            fsio.unlink(temp, missing_ok=True)
        except OSError:
            pass
        return None
