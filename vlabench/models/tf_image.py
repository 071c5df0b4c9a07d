"""TensorFlow's image kernels, as the OpenVLA / OpenVLA-OFT LIBERO evaluation runs them.

The reference evaluation prepares every camera frame with TensorFlow: a JPEG round trip
(quality 95, decoded with libjpeg's fast IDCT), a lanczos3 antialiased resize to 224, then a
90%-area centre crop resized back. The checkpoints' published numbers were made on those pixels,
so this module reproduces the kernels without a TensorFlow dependency: float32 arithmetic in
TF's order of operations, Pillow for the JPEG encode and simplejpeg (fast IDCT) for the decode.

Two implementations of the resize and the crop perform the same float32 operations in the same
order and give the same bits (tests/test_models_preprocess.py): the numpy `reference_*`
functions, which state the arithmetic readably (and were the pipeline until issue 22), and the
loop kernels below, compiled by numba on first use, which `resize_uint8` / `center_crop_uint8`
run (resize and crop of a 256x256 frame: about 0.9 ms of one thread instead of 9-10 ms).

Details: docs/models.md#tf_image
"""

from __future__ import annotations

import functools
import io
import math
from types import SimpleNamespace

import numpy as np

F32 = np.float32
_PI = F32(3.14159265359)  # sampling_kernels.h kPI
_INV_255 = F32(1.0 / 255)  # convert_image_dtype(uint8 -> float32) multiplies by this


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


@functools.lru_cache(maxsize=16)
def crop_grid(in_h: int, in_w: int, box: tuple[float, float, float, float],
              size: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """`CropAndResize<CPUDevice>`'s sampling grid for one normalised box (y1, x1, y2, x2):
    (top, bottom, y_lerp, ok_y, left, right, x_lerp, ok_x), float32 positions
    y = y1 (H-1) + i (y2-y1)(H-1)/(crop_h-1); outside the image (ok False) the output is 0."""
    y1, x1, y2, x2 = (F32(v) for v in box)

    def axis(a: F32, b: F32, n_in: int, n_out: int) -> tuple[np.ndarray, ...]:
        if n_out > 1:
            step = F32(F32((b - a) * F32(n_in - 1)) / F32(n_out - 1))
            pos = F32(a * F32(n_in - 1)) + np.arange(n_out).astype(F32) * step
        else:
            pos = np.full(1, F32(0.5 * (a + b) * (n_in - 1)), dtype=F32)
        ok = (pos >= 0) & (pos <= n_in - 1)
        pos = np.where(ok, pos, 0).astype(F32)
        lo, hi = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
        return lo, hi, (pos - lo.astype(F32)).astype(F32), ok

    out = axis(y1, y2, in_h, size[0]) + axis(x1, x2, in_w, size[1])
    for a in out:
        a.flags.writeable = False
    return out


def _center_box(crop_scale: float) -> tuple[float, float, float, float]:
    """[(1-s)/2, (1-s)/2, (1+s)/2, (1+s)/2] with s = float32 sqrt(crop_scale) clipped to [0, 1]."""
    side = np.clip(np.sqrt(F32(crop_scale)), F32(0), F32(1)).astype(F32)
    off = F32((F32(1) - side) / F32(2))
    return (float(off), float(off), float(F32(off + side)), float(F32(off + side)))


# ----------------------------------------------------------------------------- fast kernels
# Plain loops in TF's order of float32 operations, compiled by numba (`_jit`) without fastmath,
# so no operation is reassociated or fused (no FMA): the same bits as the `reference_*` code.

def _gather_rows_kernel(x, starts, weights, out):  # pragma: no cover - run compiled
    """GatherRows with its output transposed: x (n_in, n2, C) -> out (n2, n_out, C) float32 with
    out[k, y, c] = 0 + sum over j = 0 .. real span - 1, in that order, of
    float32(x[starts[y] + j, k, c]) * weights[y, j] (scale_and_translate_op.cc). Writing the
    transpose lets the second pass (GatherColumns) run as the same row gather."""
    n_in, n2, nc = x.shape
    span = weights.shape[1]
    src2 = x.reshape(n_in, n2 * nc)
    acc = np.empty(n2 * nc, np.float32)
    for y in range(out.shape[1]):
        s = starts[y]
        acc[:] = np.float32(0.0)
        for j in range(min(s + span, n_in) - s):
            w = weights[y, j]
            src = src2[s + j]
            for k in range(n2 * nc):
                acc[k] += np.float32(src[k]) * w
        for k in range(n2):
            for c in range(nc):
                out[k, y, c] = acc[k * nc + c]


def _round_kernel(x, out):  # pragma: no cover - run compiled
    """TF's cast of a resize result: uint8(clip(rint(v), 0, 255)), rint rounding half to even."""
    lo, hi = np.float32(0.0), np.float32(255.0)
    for i in range(x.shape[0]):
        v = np.rint(x[i])
        if v < lo:
            v = lo
        elif v > hi:
            v = hi
        out[i] = np.uint8(v)


def _crop_kernel(img, scale, top, bot, y_lerp, ok_y, left, right, x_lerp, ok_x, rows, out):  # pragma: no cover
    """CropAndResize (bilinear, extrapolation 0) of float32(img) * scale: per output value
    top = tl + (tr - tl) * x_lerp, bottom = bl + (br - bl) * x_lerp, top + (bottom - top) * y_lerp.
    The horizontal step is done once per input row (`rows`, (H, crop_w * C)) and shared by the
    output rows that read it: the same operations on the same operands, so the same values."""
    nc = img.shape[2]
    lo, hi = top.min(), bot.max()
    for r in range(lo, hi + 1):
        for o in range(out.shape[1]):
            lft, rgt, xl = left[o], right[o], x_lerp[o]
            for c in range(nc):
                a = np.float32(img[r, lft, c]) * scale
                b = np.float32(img[r, rgt, c]) * scale
                rows[r, o * nc + c] = a + (b - a) * xl
    m = out.shape[1] * nc
    flat = out.reshape(out.shape[0], m)
    zero = np.float32(0.0)
    for i in range(out.shape[0]):
        row = flat[i]
        if not ok_y[i]:
            for k in range(m):
                row[k] = zero
            continue
        t, b, yl = rows[top[i]], rows[bot[i]], y_lerp[i]
        for k in range(m):
            row[k] = t[k] + (b[k] - t[k]) * yl
        for o in range(out.shape[1]):
            if not ok_x[o]:
                for c in range(nc):
                    row[o * nc + c] = zero


def _saturate_kernel(x, out):  # pragma: no cover - run compiled
    """convert_image_dtype(clip(x, 0, 1), uint8, saturate=True): x * 255.5, truncated."""
    lo, hi, k = np.float32(0.0), np.float32(1.0), np.float32(255.5)
    for i in range(x.shape[0]):
        v = x[i]
        if v < lo:
            v = lo
        elif v > hi:
            v = hi
        out[i] = np.uint8(v * k)


@functools.lru_cache(maxsize=1)
def _jit() -> SimpleNamespace:
    """The kernels compiled by numba (first use: a few seconds, then loaded from numba's on-disk
    cache, about 1 s)."""
    try:
        import numba
    except ImportError as e:  # pragma: no cover - numba is in the models extra
        raise ImportError("vlabench's image kernels need numba: pip install 'vlabench[models]'") from e

    jit = numba.njit(nogil=True, cache=True, fastmath=False)
    return SimpleNamespace(rows=jit(_gather_rows_kernel), round=jit(_round_kernel),
                           crop=jit(_crop_kernel), saturate=jit(_saturate_kernel))


def _as_image(img: np.ndarray) -> np.ndarray:
    """C-contiguous HxWxC, uint8 kept, any other dtype as float32 (the reference's astype)."""
    a = np.asarray(img)
    if a.ndim != 3:
        raise ValueError(f"expected an HxWxC image, got shape {a.shape}")
    return np.ascontiguousarray(a if a.dtype in (np.uint8, F32) else a.astype(F32))


def _resize(img: np.ndarray, size: tuple[int, int], dtype: type) -> np.ndarray:
    """The lanczos3 resize: GatherRows then GatherColumns, each pass writing its transpose."""
    k = _jit()
    x = _as_image(img)
    H, W, C = x.shape
    h, w = size
    rs, rw = scale_spans(h, H)
    cs, cw = scale_spans(w, W)
    cols_first = np.empty((W, h, C), F32)   # after GatherRows, transposed
    k.rows(x, rs, rw, cols_first)
    out = np.empty((h, w, C), F32)          # GatherColumns, transposed back
    k.rows(cols_first, cs, cw, out)
    if dtype is F32:
        return out
    rounded = np.empty((h, w, C), np.uint8)
    k.round(out.reshape(-1), rounded.reshape(-1))
    return rounded


def resize_lanczos3(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`tf.image.resize(img, size, "lanczos3", antialias=True)`: HxWxC -> float32 h x w x C.

    Rows first (GatherRows), then columns (GatherColumns)."""
    return _resize(img, size, F32)


def resize_uint8(img: np.ndarray, size: int) -> np.ndarray:
    """Reference step 3: lanczos3 + antialias, then round (half to even), clip, cast to uint8."""
    return _resize(img, (size, size), np.uint8)


def _crop(img: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int],
          scale: np.float32) -> np.ndarray:
    x = _as_image(img)
    grid = crop_grid(x.shape[0], x.shape[1], tuple(float(F32(v)) for v in box), tuple(size))
    out = np.empty((size[0], size[1], x.shape[2]), F32)
    rows = np.empty((x.shape[0], size[1] * x.shape[2]), F32)
    _jit().crop(x, F32(scale), *grid, rows, out)
    return out


def crop_and_resize_bilinear(img: np.ndarray, box: tuple[float, float, float, float],
                             size: tuple[int, int]) -> np.ndarray:
    """`tf.image.crop_and_resize` (bilinear, extrapolation 0) of one float32 HxWxC image and one
    normalised box (y1, x1, y2, x2) -> float32 crop_h x crop_w x C (crop_and_resize_op.cc)."""
    return _crop(img, box, size, F32(1.0))


def center_crop_uint8(img: np.ndarray, crop_scale: float = 0.9) -> np.ndarray:
    """Reference step 4 on a uint8 HxWx3 image: centre crop of `crop_scale` area, resized back:
    convert_image_dtype(uint8 -> float32) (x * float32(1/255), inside the crop kernel), bilinear
    crop_and_resize, clip to [0, 1], convert_image_dtype(float -> uint8, saturate) (x * 255.5,
    truncated)."""
    img = np.asarray(img)
    f = _crop(img, _center_box(crop_scale), img.shape[:2], _INV_255)
    out = np.empty(f.shape, np.uint8)
    _jit().saturate(f.reshape(-1), out.reshape(-1))
    return out


# ----------------------------------------------------------------------------- numpy reference
# The same operations in numpy, in the same order (the pipeline until issue 22): the readable
# statement of the arithmetic, the tests' cross-check of the kernels above, and the "before" of
# `vlabench bench bench.preprocess=true`.

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


def reference_resize_lanczos3(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`resize_lanczos3` in numpy: rows first (GatherRows), then columns (GatherColumns)."""
    h, w = size
    rs, rw = scale_spans(h, img.shape[0])
    cs, cw = scale_spans(w, img.shape[1])
    return _gather(_gather(img, 0, rs, rw), 1, cs, cw)


def reference_resize_uint8(img: np.ndarray, size: int) -> np.ndarray:
    """`resize_uint8` in numpy."""
    out = reference_resize_lanczos3(img, (size, size))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def reference_crop_and_resize_bilinear(img: np.ndarray, box: tuple[float, float, float, float],
                                       size: tuple[int, int]) -> np.ndarray:
    """`crop_and_resize_bilinear` in numpy."""
    img = img.astype(F32)
    top, bot, y_lerp, ok_y, left, right, x_lerp, ok_x = crop_grid(
        img.shape[0], img.shape[1], tuple(float(F32(v)) for v in box), tuple(size))
    y_lerp, x_lerp = y_lerp[:, None, None], x_lerp[None, :, None]
    tl, tr = img[top][:, left], img[top][:, right]
    bl, br = img[bot][:, left], img[bot][:, right]
    t = tl + (tr - tl) * x_lerp
    b = bl + (br - bl) * x_lerp
    out = t + (b - t) * y_lerp
    out[~ok_y] = 0.0
    out[:, ~ok_x] = 0.0
    return out.astype(F32)


def reference_center_crop_uint8(img: np.ndarray, crop_scale: float = 0.9) -> np.ndarray:
    """`center_crop_uint8` in numpy."""
    x = img.astype(F32) * _INV_255  # convert_image_dtype(uint8 -> float32)
    out = reference_crop_and_resize_bilinear(x, _center_box(crop_scale), img.shape[:2])
    out = np.clip(out, F32(0), F32(1)) * F32(255.5)  # convert_image_dtype(float -> uint8, saturate)
    return np.clip(out, 0, 255).astype(np.uint8)  # saturate_cast truncates toward zero
