"""Observation preprocessing against the reference: OFT's proprio axis-angle (robosuite 1.4
`quat2axisangle`) and the TF image pipeline (fixture made by fixtures/make_image_pipeline_fixture.py)."""

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


def test_crop_and_resize_samples_corner_aligned_positions():
    """y = y1 (H-1) + i (y2-y1)(H-1)/(crop_h-1), bilinear between the neighbours."""
    img = np.arange(5, dtype=np.float32)[None, :, None].repeat(3, 0)  # 3 rows, values = column
    out = tf_image.crop_and_resize_bilinear(img, (0.0, 0.25, 1.0, 0.75), (2, 3))
    np.testing.assert_allclose(out[0, :, 0], [1.0, 2.0, 3.0])
    out = tf_image.crop_and_resize_bilinear(img, (0.0, 0.0, 1.0, 1.0), (3, 9))
    np.testing.assert_allclose(out[1, :, 0], np.arange(9) * 0.5)


def test_center_crop_truncates_when_casting_back_to_uint8():
    """2x2 [[0, 255]] crop: x = 0.02566 / 0.97434 of the way -> times 255.5 = 6.56 / 248.94 -> 6 / 248."""
    img = np.array([[[0] * 3, [255] * 3]] * 2, dtype=np.uint8)
    out = tf_image.center_crop_uint8(img, 0.9)
    side = math.sqrt(0.9)
    a, b = (1 - side) / 2, (1 + side) / 2
    assert (int(a * 255.5), int(b * 255.5)) == (6, 248)
    np.testing.assert_array_equal(out[0, :, 0], [6, 248])
    const = np.full((20, 20, 3), 200, np.uint8)
    np.testing.assert_array_equal(tf_image.center_crop_uint8(const), const)


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


def test_lanczos_resize_of_tf_decode_equals_tensorflows(ref):
    out = tf_image.resize_uint8(ref["agentview_decoded"], 224)
    assert np.abs(out.astype(int) - ref["agentview_resized"]).max() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_center_crop_of_tf_resize_equals_tensorflows(ref, name):
    out = tf_image.center_crop_uint8(ref[f"{name}_resized"], 0.9)
    assert np.abs(out.astype(int) - ref[f"{name}_cropped"]).max() <= 1


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("crop", [False, True])
def test_policy_image_matches_the_tf_reference_within_one_level(ref, name, crop):
    out = policy_image(ref[name], 224, center_crop=crop)
    want = ref[f"{name}_cropped" if crop else f"{name}_resized"]
    diff = np.abs(out.astype(int) - want)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    assert diff.max() <= 1
    assert (diff == 0).mean() >= 0.999


def test_unnormalize_q99_uses_each_models_reference_epsilon():
    """OpenVLA: 0.5 (a + 1) (q99 - q01) + q01; OFT adds 1e-8 to the range; masked dims pass."""
    from vlabench.models.preprocess import unnormalize_q99

    stats = {"q01": [-2.0, 0.0], "q99": [2.0, 1.0], "mask": [True, False]}
    a = np.array([0.5, 0.7])
    assert unnormalize_q99(a, stats).tolist() == [1.0, 0.7]
    assert unnormalize_q99(a, stats, eps=1e-8)[0] == 0.5 * 1.5 * (4.0 + 1e-8) - 2.0
