"""Observation preprocessing against the reference: OFT's proprio axis-angle (robosuite 1.4
`quat2axisangle`) and the TF image pipeline (fixture made by fixtures/make_image_pipeline_fixture.py).

The image pipeline is pinned bit for bit: every stage equals TensorFlow's stored uint8 output
exactly, the compiled kernels equal the numpy reference kernels in float32 bits, and a one-ulp
change of either stage's float result changes stored pixels (so the exact comparison catches it)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")  # models.preprocess imports torch
from vlabench.models import tf_image  # noqa: E402
from vlabench.models.preprocess import oft_proprio, policy_image, quat_to_axis_angle  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "image_pipeline_tf.npz"
NAMES = ("agentview", "wrist", "synthetic")
S45 = math.sqrt(0.5)


# ----------------------------------------------------------------- proprio axis-angle
@pytest.mark.parametrize("quat, expected", [
    ([0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0]),                          # identity
    ([0.0, 0.0, S45, S45], [0.0, 0.0, math.pi / 2]),                  # +90 deg about z
    ([0.0, 0.0, -S45, -S45], [0.0, 0.0, -1.5 * math.pi]),             # same rotation, w < 0: 270 deg about -z
    ([1.0, 0.0, 0.0, 0.0], [math.pi, 0.0, 0.0]),                      # 180 deg about x
    ([0.0, 1.0, 0.0, 1.0 + 1e-9], [0.0, 0.0, 0.0]),                   # w clipped to 1 -> zero rotation
    ([0.0, 1.0, 0.0, -1.0 - 1e-9], [0.0, 0.0, 0.0]),                  # w clipped to -1 -> den 0 -> zeros
])
def test_quat_to_axis_angle_hand_worked(quat, expected):
    np.testing.assert_allclose(quat_to_axis_angle(np.array(quat)), expected, atol=1e-12)


def test_quat_with_negative_w_keeps_the_angle_past_pi_as_the_reference():
    """The gripper pointing down, turned slightly: w < 0 gives x = +3.16, not the flipped -3.12."""
    q = np.array([1.0, 0.0, 0.0, -0.01]) / math.hypot(1.0, 0.01)
    out = quat_to_axis_angle(q)
    assert out[0] == pytest.approx(2 * math.acos(-0.01 / math.hypot(1.0, 0.01)), abs=1e-12)
    assert out[0] > math.pi
    np.testing.assert_allclose(oft_proprio({"eef_pos": np.zeros(3), "eef_quat": q,
                                            "gripper_qpos": np.zeros(2)})[3:6], out)


def test_quat_to_axis_angle_equals_robosuite_and_leaves_its_input_alone():
    T = pytest.importorskip("robosuite.utils.transform_utils")
    rng = np.random.default_rng(0)
    qs = rng.normal(size=(2000, 4))
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    qs[:5] = [[0, 0, 0, 1], [0, 0, 0, -1], [1, 0, 0, 0], [0, 0, S45, -S45], [0.6, 0, 0, -0.8]]
    assert (qs[:, 3] < 0).sum() > 900
    for q in qs:
        before = q.copy()
        np.testing.assert_array_equal(quat_to_axis_angle(q), T.quat2axisangle(q.copy()))
        np.testing.assert_array_equal(q, before)


# ----------------------------------------------------------------- TF kernels, hand-worked
def test_lanczos3_kernel_values():
    x = np.array([0.0, 5e-4, 0.5, 1.0, 3.0, 3.5], dtype=np.float32)
    k = tf_image.lanczos3(x)
    assert k[0] == 1.0 and k[1] == 1.0  # |x| <= 1e-3 is special-cased to 1
    assert k[2] == pytest.approx(3 * math.sin(math.pi / 2) * math.sin(math.pi / 6) / (math.pi**2 * 0.25), rel=1e-6)
    assert abs(k[3]) < 1e-6 and abs(k[4]) < 1e-6 and k[5] == 0.0


def test_lanczos3_spans_scale_the_kernel_when_downscaling():
    starts, w = tf_image.scale_spans(224, 256)
    assert w.shape == (224, 9)  # 2 * ceil(3 * 256/224) + 1
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
    # output pixel 100 samples input position (100.5) * 256/224 = 114.857; its span starts at
    # ceil(114.857 - 3 * 8/7 - 0.5) = 111; the weight of source s is lanczos3((s + 0.5 - 114.857) * 7/8)
    assert starts[100] == 111
    pos = (np.arange(111, 120) + 0.5 - 100.5 * 256 / 224) * 224 / 256
    ref = np.array([1.0 if abs(p) < 1e-9 else 3 * math.sin(math.pi * p) * math.sin(math.pi * p / 3) / (math.pi * p) ** 2
                    if abs(p) < 3 else 0.0 for p in pos])
    np.testing.assert_allclose(w[100], ref / ref.sum(), atol=1e-5)  # float32, float32 pi
    s_up, w_up = tf_image.scale_spans(224, 100)  # upscaling: kernel not widened
    assert w_up.shape == (224, 7)


CROPS = {"kernel": (tf_image.crop_and_resize_bilinear, tf_image.center_crop_uint8),
         "reference": (tf_image.reference_crop_and_resize_bilinear, tf_image.reference_center_crop_uint8)}


@pytest.mark.parametrize("impl", sorted(CROPS))
def test_crop_and_resize_samples_corner_aligned_positions(impl):
    """y = y1 (H-1) + i (y2-y1)(H-1)/(crop_h-1), bilinear between the neighbours; 0 outside."""
    crop = CROPS[impl][0]
    img = np.arange(5, dtype=np.float32)[None, :, None].repeat(3, 0)  # 3 rows, values = column
    out = crop(img, (0.0, 0.25, 1.0, 0.75), (2, 3))
    np.testing.assert_allclose(out[0, :, 0], [1.0, 2.0, 3.0])
    out = crop(img, (0.0, 0.0, 1.0, 1.0), (3, 9))
    np.testing.assert_allclose(out[1, :, 0], np.arange(9) * 0.5)
    out = crop(img + 1, (-1.0, 0.0, 1.0, 2.0), (3, 3))  # rows y = -2, 0, 2; columns x = 0, 4, 8
    np.testing.assert_array_equal(out[:, :, 0], [[0, 0, 0], [1, 5, 0], [1, 5, 0]])


@pytest.mark.parametrize("impl", sorted(CROPS))
def test_center_crop_truncates_when_casting_back_to_uint8(impl):
    """2x2 [[0, 255]] crop: x = 0.02566 / 0.97434 of the way -> times 255.5 = 6.56 / 248.94 -> 6 / 248."""
    center_crop = CROPS[impl][1]
    img = np.array([[[0] * 3, [255] * 3]] * 2, dtype=np.uint8)
    out = center_crop(img, 0.9)
    side = math.sqrt(0.9)
    a, b = (1 - side) / 2, (1 + side) / 2
    assert (int(a * 255.5), int(b * 255.5)) == (6, 248)
    np.testing.assert_array_equal(out[0, :, 0], [6, 248])
    const = np.full((20, 20, 3), 200, np.uint8)
    np.testing.assert_array_equal(center_crop(const), const)


# ----------------------------------------------------------------- against TF's own output
@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as f:
        return dict(f)


@pytest.mark.parametrize("name", NAMES)
def test_jpeg_bytes_equal_tensorflows(ref, name):
    assert tf_image.encode_jpeg(ref[name]) == ref[f"{name}_jpeg"].tobytes()


def test_jpeg_decode_equals_tensorflows_fast_idct(ref):
    out = tf_image.decode_jpeg(ref["agentview_jpeg"].tobytes())
    np.testing.assert_array_equal(out, ref["agentview_decoded"])


def test_lanczos_resize_of_tf_decode_equals_tensorflows_bit_for_bit(ref):
    np.testing.assert_array_equal(tf_image.resize_uint8(ref["agentview_decoded"], 224),
                                  ref["agentview_resized"])


@pytest.mark.parametrize("name", NAMES)
def test_center_crop_of_tf_resize_equals_tensorflows_bit_for_bit(ref, name):
    np.testing.assert_array_equal(tf_image.center_crop_uint8(ref[f"{name}_resized"], 0.9),
                                  ref[f"{name}_cropped"])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("crop", [False, True])
def test_policy_image_equals_the_tf_reference_bit_for_bit(ref, name, crop):
    out = policy_image(ref[name], 224, center_crop=crop)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, ref[f"{name}_cropped" if crop else f"{name}_resized"])


def _bits(a: np.ndarray) -> np.ndarray:
    """float32 values as their bit patterns (so -0.0 != 0.0 and NaNs compare)."""
    assert a.dtype == np.float32
    return np.ascontiguousarray(a).view(np.uint32)


def _frames(ref) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return ([tf_image.jpeg_round_trip(ref[n]) for n in NAMES]
            + [rng.integers(0, 256, s + (3,), dtype=np.uint8) for s in [(100, 300), (480, 640), (5, 3), (1, 1)]])


def test_resize_kernel_equals_the_numpy_reference_in_float32_bits(ref):
    """Down- and upscaling, non-square, tiny and one-pixel inputs and outputs."""
    for img in _frames(ref):
        for size in [(224, 224), (100, 50), (300, 260), (1, 1)]:
            np.testing.assert_array_equal(_bits(tf_image.resize_lanczos3(img, size)),
                                          _bits(tf_image.reference_resize_lanczos3(img, size)),
                                          err_msg=f"{img.shape} -> {size}")
        np.testing.assert_array_equal(tf_image.resize_uint8(img, 224), tf_image.reference_resize_uint8(img, 224))


def test_crop_kernel_equals_the_numpy_reference_in_float32_bits(ref):
    """Boxes inside, partly outside (extrapolated to 0) and degenerate; every centre-crop scale."""
    boxes = [((0.1, 0.2, 0.9, 0.7), (50, 60)), ((-0.2, 0.1, 1.3, 0.8), (30, 31)),
             ((0.5, 0.5, 0.5, 0.5), (1, 1)), ((0.0, 0.0, 1.0, 1.0), (7, 9))]
    for img in _frames(ref) + [ref[f"{n}_resized"] for n in NAMES]:
        x = img.astype(np.float32) * np.float32(1 / 255)
        for box, size in boxes:
            np.testing.assert_array_equal(_bits(tf_image.crop_and_resize_bilinear(x, box, size)),
                                          _bits(tf_image.reference_crop_and_resize_bilinear(x, box, size)),
                                          err_msg=f"{img.shape} {box} {size}")
        for scale in (0.9, 0.5, 1.0, 0.01):
            np.testing.assert_array_equal(tf_image.center_crop_uint8(img, scale),
                                          tf_image.reference_center_crop_uint8(img, scale))


def _cast_resize(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _cast_crop(x: np.ndarray) -> np.ndarray:
    return np.clip(np.clip(x, 0, 1) * np.float32(255.5), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("stage", ["resize", "crop"])
def test_a_one_ulp_change_of_either_stage_changes_stored_pixels(ref, stage):
    """The bit-for-bit tests above are sharp to one ulp: moving every float32 result of the stage
    one ulp up (or down) before its uint8 cast changes pixels of TF's stored output, because
    some values sit within an ulp of a rounding (resize) or truncation (crop) boundary."""
    changed = {np.inf: 0, -np.inf: 0}
    for name in NAMES:
        if stage == "resize":
            x = tf_image.resize_lanczos3(tf_image.jpeg_round_trip(ref[name]), (224, 224))
            cast, want = _cast_resize, ref[f"{name}_resized"]
        else:
            side = np.sqrt(np.float32(0.9))
            off = np.float32((1 - side) / 2)
            x = tf_image.crop_and_resize_bilinear(ref[f"{name}_resized"].astype(np.float32) * np.float32(1 / 255),
                                                  (off, off, off + side, off + side), (224, 224))
            cast, want = _cast_crop, ref[f"{name}_cropped"]
        np.testing.assert_array_equal(cast(x), want)
        for to in changed:
            changed[to] += int((cast(np.nextafter(x, np.float32(to))) != want).sum())
    assert changed[np.inf] > 0 and changed[-np.inf] > 0, changed


def test_unnormalize_q99_uses_each_models_reference_epsilon():
    """OpenVLA: 0.5 (a + 1) (q99 - q01) + q01; OFT adds 1e-8 to the range; masked dims pass."""
    from vlabench.models.preprocess import unnormalize_q99

    stats = {"q01": [-2.0, 0.0], "q99": [2.0, 1.0], "mask": [True, False]}
    a = np.array([0.5, 0.7])
    assert unnormalize_q99(a, stats).tolist() == [1.0, 0.7]
    assert unnormalize_q99(a, stats, eps=1e-8)[0] == 0.5 * 1.5 * (4.0 + 1e-8) - 2.0


def test_bench_preprocess_times_both_pipelines_interleaved_on_equal_pixels(tmp_path):
    """`vlabench bench bench.preprocess=true`: per stage, per frame and per call, before/after."""
    import json

    from vlabench.commands.bench import bench_from_config
    from vlabench.core.errors import ConfigError
    from vlabench.launch.compose import compose

    out = tmp_path / "pre.json"
    cfg = compose(["bench.preprocess=true", "bench.calls=2", f"bench.out={out}"])
    res = bench_from_config(cfg)
    assert res == json.loads(out.read_text()) and res["frames"] == 4
    for impl in ("before", "after"):
        r = res[impl]
        assert r["frame_thread_ms"]["n"] == 4
        stages = sum(r[f"{s}_thread_ms"]["mean"] for s in ("jpeg", "resize", "crop"))
        assert r["frame_thread_ms"]["mean"] == pytest.approx(stages)
    calls = res["per_call_thread_ms"]["OFT call (2 frames)"]
    assert calls["after"] == pytest.approx(2 * res["after"]["frame_thread_ms"]["mean"])
    assert len(res["load_average"]["before"]) == 3
    with pytest.raises(ConfigError, match="bench.preprocess"):
        compose(["bench.preprocess=maybe"])
