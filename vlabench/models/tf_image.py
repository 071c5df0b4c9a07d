"""TensorFlow's image kernels, as the OpenVLA / OpenVLA-OFT LIBERO evaluation runs them, in numpy.

The reference evaluation prepares every camera frame with TensorFlow: a JPEG round trip
(quality 95, decoded with libjpeg's fast IDCT), a lanczos3 antialiased resize to 224, then a
90%-area centre crop resized back. The checkpoints' published numbers were made on those pixels,
so this module reproduces the kernels without a TensorFlow dependency: float32 arithmetic in
TF's order of operations, Pillow for the JPEG encode and simplejpeg (fast IDCT) for the decode.

Details: docs/models.md#tf_image
"""

from __future__ import annotations

import functools
import io
import math

import numpy as np

F32 = np.float32
_PI = F32(3.14159265359)  # sampling_kernels.h kPI


def encode_jpeg(img: np.ndarray, quality: int = 95) -> bytes:
    """`tf.image.encode_jpeg(img)` with its defaults (quality 95, 4:2:0 chroma, baseline, no
    Huffman optimisation, JFIF density 300 dpi): the same bytes, through Pillow's libjpeg-turbo
    (simplejpeg's encoder writes different scan data)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8)).save(
        buf, format="JPEG", quality=quality, subsampling=2, optimize=False, progressive=False,
        dpi=(300, 300))
    return buf.getvalue()


def decode_jpeg(data: bytes) -> np.ndarray:
    """`tf.io.decode_image(data, dtype=tf.uint8)` for a JPEG: libjpeg's fast integer IDCT
    (TF's default `JDCT_IFAST`) with fancy upsampling."""
    import simplejpeg

    return simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=True, fastupsample=False)


def jpeg_round_trip(img: np.ndarray, quality: int = 95) -> np.ndarray:
    """HxWx3 uint8 -> the pixels TF's `decode_image(encode_jpeg(img))` gives."""
    return decode_jpeg(encode_jpeg(img, quality))


def _sinf(x: np.ndarray) -> np.ndarray:
    """float32 sine as TF's C++ `std::sin(float)` computes it: the C library's sinf (numpy's
    float32 SIMD sine may differ by an ulp); correctly rounded double sine where libm is absent."""
    f = _libm_sinf()
    x = np.asarray(x, dtype=F32)
    if f is None:
        return np.sin(x.astype(np.float64)).astype(F32)
    return np.array([f(float(v)) for v in x.ravel()], dtype=F32).reshape(x.shape)


@functools.lru_cache(maxsize=1)
def _libm_sinf():
    import ctypes
    import ctypes.util

    try:
        lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        f = lib.sinf
    except (OSError, AttributeError):
        return None
    f.restype, f.argtypes = ctypes.c_float, [ctypes.c_float]
    return f


def lanczos3(x: np.ndarray) -> np.ndarray:
    """sampling_kernels.h LanczosKernelFunc(3), float32."""
    radius = F32(3.0)
    x = np.abs(x.astype(F32))
    px = _PI * x
    with np.errstate(divide="ignore", invalid="ignore"):
        val = radius * _sinf(px) * _sinf(px / radius) / (_PI * _PI * x * x)
    val = np.where(x <= 1e-3, F32(1.0), val)
    return np.where(x > radius, F32(0.0), val).astype(F32)


@functools.lru_cache(maxsize=16)
def scale_spans(out_size: int, in_size: int, antialias: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """ComputeSpansCore for lanczos3, scale = out/in, translate 0 -> (starts (out,), weights (out, span)).

    Weights past the real span (clamped at the image edge) are zero."""
    scale = F32(out_size) / F32(in_size)
    inv_scale = F32(1.0 / float(scale))
    kernel_scale = max(inv_scale, F32(1.0)) if antialias else F32(1.0)
    radius = F32(3.0)
    span_size = min(2 * int(math.ceil(float(radius * kernel_scale))) + 1, in_size)
    one_over_ks = F32(1.0) / kernel_scale
    starts = np.zeros(out_size, dtype=np.int64)
    weights = np.zeros((out_size, span_size), dtype=F32)
    for x in range(out_size):
        sample = F32(x + F32(0.5)) * inv_scale  # + (-inv_scale * 0)
        if sample < 0 or sample > in_size:
            continue
        start = int(math.ceil(float(sample - radius * kernel_scale - F32(0.5))))
        end = int(math.floor(float(sample + radius * kernel_scale - F32(0.5))))
        start = min(max(start, 0), in_size - 1)
        end = min(max(end, 0), in_size - 1) + 1
        src = np.arange(start, end)
        pos = (src.astype(F32) + F32(0.5)) - sample
        w = lanczos3(np.abs(pos * one_over_ks))
        total = F32(0.0)
        for v in w:  # sequential float32 sum, as the C++ loop
            total = F32(total + v)
        if abs(total) >= 1000.0 * np.finfo(F32).tiny:
            weights[x, : end - start] = w * (F32(1.0) / total)
        starts[x] = start
    starts.flags.writeable = False
    weights.flags.writeable = False
    return starts, weights


def _gather(img: np.ndarray, axis: int, starts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum_j weights[:, j] * img[starts + j] along `axis`, accumulated in float32 in span order."""
    n = img.shape[axis]
    moved = np.moveaxis(img, axis, 0).astype(F32)
    acc = np.zeros((len(starts),) + moved.shape[1:], dtype=F32)
    shape = (-1,) + (1,) * (moved.ndim - 1)
    for j in range(weights.shape[1]):
        idx = np.minimum(starts + j, n - 1)  # past the edge the weight is 0
        acc += weights[:, j].reshape(shape) * moved[idx]
    return np.moveaxis(acc, 0, axis)


def resize_lanczos3(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`tf.image.resize(img, size, "lanczos3", antialias=True)`: HxWxC -> float32 h x w x C.

    Rows first (GatherRows), then columns (GatherColumns)."""
    h, w = size
    rs, rw = scale_spans(h, img.shape[0])
    cs, cw = scale_spans(w, img.shape[1])
    return _gather(_gather(img, 0, rs, rw), 1, cs, cw)


def resize_uint8(img: np.ndarray, size: int) -> np.ndarray:
    """Reference step 3: lanczos3 + antialias, then round (half to even), clip, cast to uint8."""
    out = resize_lanczos3(img, (size, size))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def crop_and_resize_bilinear(img: np.ndarray, box: tuple[float, float, float, float],
                             size: tuple[int, int]) -> np.ndarray:
    """`tf.image.crop_and_resize` (bilinear, extrapolation 0) of one float32 HxWxC image and one
    normalised box (y1, x1, y2, x2) -> float32 crop_h x crop_w x C (crop_and_resize_op.cc)."""
    img = img.astype(F32)
    H, W = img.shape[:2]
    y1, x1, y2, x2 = (F32(v) for v in box)
    ch, cw = size

    def coords(a: F32, b: F32, n_in: int, n_out: int) -> np.ndarray:
        if n_out > 1:
            step = F32(F32((b - a) * F32(n_in - 1)) / F32(n_out - 1))
            return F32(a * F32(n_in - 1)) + np.arange(n_out).astype(F32) * step
        return np.full(1, F32(0.5 * (a + b) * (n_in - 1)), dtype=F32)

    in_y, in_x = coords(y1, y2, H, ch), coords(x1, x2, W, cw)
    ok_y = (in_y >= 0) & (in_y <= H - 1)
    ok_x = (in_x >= 0) & (in_x <= W - 1)
    yc, xc = np.where(ok_y, in_y, 0).astype(F32), np.where(ok_x, in_x, 0).astype(F32)
    top, bot = np.floor(yc).astype(np.int64), np.ceil(yc).astype(np.int64)
    left, right = np.floor(xc).astype(np.int64), np.ceil(xc).astype(np.int64)
    y_lerp = (yc - top.astype(F32))[:, None, None]
    x_lerp = (xc - left.astype(F32))[None, :, None]
    tl, tr = img[top][:, left], img[top][:, right]
    bl, br = img[bot][:, left], img[bot][:, right]
    t = tl + (tr - tl) * x_lerp
    b = bl + (br - bl) * x_lerp
    out = t + (b - t) * y_lerp
    out[~ok_y] = 0.0
    out[:, ~ok_x] = 0.0
    return out.astype(F32)


def center_crop_uint8(img: np.ndarray, crop_scale: float = 0.9) -> np.ndarray:
    """Reference step 4 on a uint8 HxWx3 image: centre crop of `crop_scale` area, resized back."""
    side = np.clip(np.sqrt(F32(crop_scale)), F32(0), F32(1)).astype(F32)
    off = F32((F32(1) - side) / F32(2))
    box = (off, off, F32(off + side), F32(off + side))
    x = img.astype(F32) * F32(1.0 / 255)  # convert_image_dtype(uint8 -> float32)
    out = crop_and_resize_bilinear(x, box, img.shape[:2])
    out = np.clip(out, F32(0), F32(1)) * F32(255.5)  # convert_image_dtype(float -> uint8, saturate)
    return np.clip(out, 0, 255).astype(np.uint8)  # saturate_cast truncates toward zero
