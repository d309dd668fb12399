"""Numpy float64 references for the ops of bprop.nn.functional and the numerically delicate
reductions, written the plain way (loops over kernel offsets, explicit formulas) so that they
are easy to check by eye. Shared by test_ops.py and test_functional.py."""

from __future__ import annotations

import math

import numpy as np

erf = np.vectorize(math.erf, otypes=[np.float64])


def pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def logsumexp(a, axis=None, keepdims=False):
    a = np.asarray(a, dtype=np.float64)
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    if keepdims:
        return out
    return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)


def softmax(a, axis):
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(a, axis):
    return a - logsumexp(a, axis=axis, keepdims=True)


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def gelu(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def softplus(x, beta=1.0, threshold=20.0):
    return np.where(
        x * beta > threshold, x, np.log1p(np.exp(-np.abs(beta * x))) / beta + np.maximum(x, 0.0)
    )


def leaky_relu(x, negative_slope=0.01):
    return np.where(x > 0, x, negative_slope * x)


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean()


def mse_loss(x, y, reduction="mean"):
    return _reduce((x - y) ** 2, reduction)


def binary_cross_entropy_with_logits(x, y, weight=None, reduction="mean", pos_weight=None):
    log_sig_neg = np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0.0)  # -log(sigmoid(x))
    if pos_weight is None:
        loss = (1.0 - y) * x + log_sig_neg
    else:
        loss = (1.0 - y) * x + (1.0 + (pos_weight - 1.0) * y) * log_sig_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def linear(x, w, b=None):
    out = x @ w.T
    return out if b is None else out + b


def _class_last(x, target):
    """(N, C, d1, ...) -> (N, d1, ..., C); (C,) -> (1, C)."""
    if x.ndim == 1:
        return x[None], np.asarray(target)[None]
    return np.moveaxis(x, 1, -1), np.asarray(target)


def nll_loss(logp, target, weight=None, ignore_index=-100, reduction="mean"):
    squeeze = logp.ndim == 1
    lp, t = _class_last(logp, target)
    n_classes = lp.shape[-1]
    w = np.ones(n_classes) if weight is None else np.asarray(weight, dtype=np.float64)
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    wt = np.where(valid, w[safe], 0.0)
    picked = np.take_along_axis(lp, safe[..., None], axis=-1)[..., 0]
    loss = -picked * wt
    if reduction == "none":
        return loss[0] if squeeze else loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / wt.sum()


def cross_entropy(x, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """PyTorch's formula, including how label smoothing is normalised under weights."""
    logp = log_softmax(x, axis=0 if x.ndim == 1 else 1)
    nll = nll_loss(logp, target, weight, ignore_index, reduction)
    if label_smoothing == 0.0:
        return nll
    squeeze = x.ndim == 1
    lp, t = _class_last(logp, target)
    n_classes = lp.shape[-1]
    w = np.ones(n_classes) if weight is None else np.asarray(weight, dtype=np.float64)
    valid = t != ignore_index
    smooth = np.where(valid, -(lp * w).sum(axis=-1), 0.0)
    if reduction == "none":
        smooth = smooth[0] if squeeze else smooth
    elif reduction == "sum":
        smooth = smooth.sum()
    else:
        denom = w[t[valid]].sum() if weight is not None else valid.sum()
        smooth = smooth.sum() / denom
    return (1.0 - label_smoothing) * nll + smooth * (label_smoothing / n_classes)


def _out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    dh, dw = pair(dilation)
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    oh, ow = _out_size(h, kh, sh, ph, dh), _out_size(wd, kw, sw, pw, dw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for g in range(groups):
        xs = xp[:, g * cg : (g + 1) * cg]
        ws = w[g * og : (g + 1) * og]
        for i in range(kh):
            for j in range(kw):
                patch = xs[
                    :,
                    :,
                    i * dh : i * dh + sh * (oh - 1) + 1 : sh,
                    j * dw : j * dw + sw * (ow - 1) + 1 : sw,
                ]
                out[:, g * og : (g + 1) * og] += np.einsum("nchw,oc->nohw", patch, ws[:, :, i, j])
    if b is not None:
        out = out + b[None, :, None, None]
    return out


def _pool(x, kernel_size, stride, padding, fill, combine):
    kh, kw = pair(kernel_size)
    sh, sw = pair(kernel_size if stride is None else stride)
    ph, pw = pair(padding)
    n, c, h, w = x.shape
    oh, ow = _out_size(h, kh, sh, ph, 1), _out_size(w, kw, sw, pw, 1)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    windows = [
        xp[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]
    return combine(np.stack(windows))


def max_pool2d(x, kernel_size, stride=None, padding=0):
    return _pool(x, kernel_size, stride, padding, -np.inf, lambda s: s.max(axis=0))


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """count_include_pad=True, PyTorch's default: padded zeros count in the divisor."""
    return _pool(x, kernel_size, stride, padding, 0.0, lambda s: s.mean(axis=0))
