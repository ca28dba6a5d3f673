"""Hypothesis strategies for random conv layers, with oracle-side padding resolution."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

import toeplitz_conv as tc

MODES = ("zeros", "circular", "reflect", "replicate")
# HYPOTHESIS_PROFILE=ci (set by .ci/run) draws every random test's full count; the default,
# for README's test command, a fifth of it (at least 10)
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "ci"


def examples(count: int) -> int:
    """How many random cases a test draws: ``count`` in CI, a fifth of it by default."""
    return count if THOROUGH else max(10, count // 5)


DTYPES = (np.float32, np.float64, np.complex64, np.complex128)


@dataclass
class LayerCase:
    weight: np.ndarray
    input_shape: tuple
    stride: tuple
    dilation: tuple
    groups: int
    padding: object  # as passed to the operator
    pads: tuple  # resolved here, independently of the package
    mode: str
    dtype: type
    bias: np.ndarray | None

    @property
    def d(self) -> int:
        return self.weight.ndim - 2

    def kwargs(self) -> dict:
        return dict(
            bias=self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            padding_mode=self.mode,
            dtype=self.dtype,
        )

    def oracle_kwargs(self) -> dict:
        return dict(
            stride=self.stride,
            pads=self.pads,
            dilation=self.dilation,
            groups=self.groups,
            mode=self.mode,
        )


def random_array(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def onnx_same_upper(n, k, s, dil):
    out = -(-n // s)
    total = max(0, (out - 1) * s + dil * (k - 1) + 1 - n)
    return (total // 2, total - total // 2)


@st.composite
def layer_cases(
    draw, modes=MODES, dtypes=DTYPES, max_dim=3, padding_forms=None, channels=(1, 2, 3)
):
    """A conv layer; ``channels``: the choices of input and output channels per group."""
    d = draw(st.integers(1, max_dim))
    groups = draw(st.integers(1, 3))
    c_in_g, c_out_g = draw(st.sampled_from(channels)), draw(st.sampled_from(channels))
    kmax, nmax = {1: (5, 14), 2: (4, 8), 3: (3, 5)}[d]
    kernel = tuple(draw(st.integers(1, kmax)) for _ in range(d))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(d))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(d))
    spatial = tuple(
        draw(st.integers(dil * (k - 1) + 1, dil * (k - 1) + nmax))
        for k, dil in zip(kernel, dilation)
    )
    mode = draw(st.sampled_from(modes))
    # reflect needs pads < n (PyTorch); circular pads <= n keeps torch's F.pad as the oracle
    limits = [min(3, n - 1) if mode == "reflect" else min(3, n) for n in spatial]
    form = draw(st.sampled_from(padding_forms or ("int", "tuple", "pairs", "valid", "same")))
    if form == "int":
        p = draw(st.integers(0, min(limits)))
        padding, pads = p, ((p, p),) * d
    elif form == "tuple":
        ps = tuple(draw(st.integers(0, lim)) for lim in limits)
        padding, pads = ps, tuple((p, p) for p in ps)
    elif form == "pairs":
        pads = tuple((draw(st.integers(0, lim)), draw(st.integers(0, lim))) for lim in limits)
        padding = pads
    elif form == "valid":
        padding, pads = "valid", ((0, 0),) * d
    else:
        padding = "same"
        pads = tuple(
            onnx_same_upper(n, k, s, dil) for n, k, s, dil in zip(spatial, kernel, stride, dilation)
        )
    dtype = draw(st.sampled_from(dtypes))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    weight = random_array(rng, (groups * c_out_g, c_in_g, *kernel), dtype)
    bias = random_array(rng, (groups * c_out_g,), dtype) if draw(st.booleans()) else None
    return LayerCase(
        weight,
        (groups * c_in_g, *spatial),
        stride,
        dilation,
        groups,
        padding,
        pads,
        mode,
        dtype,
        bias,
    )


@dataclass
class TransposeCase(LayerCase):
    """A conv-transpose layer: ``weight`` is ``(C_in, C_out/groups, *kernel)``."""

    output_padding: tuple
    output_size: tuple | None

    def kwargs(self) -> dict:
        extra = (
            {"output_size": self.output_size}
            if self.output_size is not None
            else {"output_padding": self.output_padding}
        )
        return {**super().kwargs(), **extra}

    def oracle_kwargs(self) -> dict:
        return dict(
            stride=self.stride,
            pads=self.pads,
            output_padding=self.output_padding,
            dilation=self.dilation,
            groups=self.groups,
        )


@st.composite
def transpose_cases(draw, modes=MODES, dtypes=DTYPES, max_dim=3):
    d = draw(st.integers(1, max_dim))
    groups = draw(st.integers(1, 3))
    c_in_g, c_out_g = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kmax, mmax = {1: (5, 8), 2: (4, 5), 3: (3, 3)}[d]
    kernel = tuple(draw(st.integers(1, kmax)) for _ in range(d))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(d))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(d))
    m = tuple(draw(st.integers(1, mmax)) for _ in range(d))
    mode = draw(st.sampled_from(modes))
    output_padding = tuple(
        draw(st.integers(0, max(s, dil) - 1)) for s, dil in zip(stride, dilation)
    )
    pads = []
    for mi, k, s, dil, op in zip(m, kernel, stride, dilation, output_padding):
        room = (mi - 1) * s + dil * (k - 1) + op  # n = room + 1 - pb - pa must stay >= 1
        n_full = room + 1
        limit = min(3, room)
        pb = draw(st.integers(0, limit))
        pa = draw(st.integers(0, min(3, room - pb)))
        n = n_full - pb - pa
        if mode == "reflect":
            pb, pa = min(pb, n - 1), min(pa, n - 1)
        elif mode == "circular":
            pb, pa = min(pb, n), min(pa, n)
        pads.append((pb, pa))
    pads = tuple(pads)
    # shrinking pads keeps every constraint satisfied (n only grows)
    form = draw(st.sampled_from(("int", "tuple", "pairs")))
    if form == "int":
        p = min(v for pair in pads for v in pair)
        pads, padding = ((p, p),) * d, p
    elif form == "tuple":
        pads = tuple((min(pair), min(pair)) for pair in pads)
        padding = tuple(pair[0] for pair in pads)
    else:
        padding = pads
    use_size = draw(st.booleans()) and all(op < s for op, s in zip(output_padding, stride))
    output_size = None
    if use_size:
        output_size = tuple(
            (mi - 1) * s - pb - pa + dil * (k - 1) + 1 + op
            for mi, s, (pb, pa), dil, k, op in zip(
                m, stride, pads, dilation, kernel, output_padding
            )
        )
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weight = random_array(rng, (groups * c_in_g, c_out_g, *kernel), dtype)
    bias = random_array(rng, (groups * c_out_g,), dtype) if draw(st.booleans()) else None
    return TransposeCase(
        weight,
        (groups * c_in_g, *m),
        stride,
        dilation,
        groups,
        padding,
        pads,
        mode,
        dtype,
        bias,
        output_padding=output_padding,
        output_size=output_size,
    )


@st.composite
def symmetric_weights(draw, kernel: tuple[int, ...]):
    """``(weight, groups, C_in)``: a conv weight ``(C_out, C_in / groups, *kernel)`` whose
    kernels are symmetric along every axis, 1 or 2 groups of 1-3 channels each way, real
    or complex (the cosine forms' class)."""
    groups = draw(st.integers(1, 2))
    c_in_g, c_out_g = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    w = rng.standard_normal((groups * c_out_g, c_in_g, *kernel))
    if draw(st.booleans()):
        w = w + 1j * rng.standard_normal(w.shape)
    for axis in range(2, 2 + len(kernel)):
        w = w + np.flip(w, axis)
    return w, groups, groups * c_in_g


@st.composite
def circular_fft_layers(draw):
    """Circular layers on sizes divisible by the stride with output n / s (FFT applies)."""
    d = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    c_in_g, c_out_g = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(d))
    kernel = tuple(draw(st.integers(1, 4 if d < 3 else 3)) for _ in range(d))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(d))
    coarse = tuple(draw(st.integers(1, 4 if d < 3 else 2)) for _ in range(d))
    spatial = tuple(c * s for c, s in zip(coarse, stride))
    pads = []
    for k, s, dil in zip(kernel, stride, dilation):
        # output n / s  <=>  s - 1 >= total - dil (k - 1) >= 1 - s, and total >= 0
        low = max(0, dil * (k - 1) - s + 1)
        total = draw(st.integers(low, dil * (k - 1)))
        before = draw(st.integers(0, total))  # circular may wrap more than once
        pads.append((before, total - before))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    w = rng.standard_normal((groups * c_out_g, c_in_g, *kernel))
    if draw(st.booleans()):
        w = w + 1j * rng.standard_normal(w.shape)
    return tc.Conv(
        w,
        (groups * c_in_g, *spatial),
        stride=stride,
        padding=tuple(pads),
        dilation=dilation,
        groups=groups,
        padding_mode="circular",
    )


def cross_channel_gaussian(mode: str):
    """A 3 -> 3 layer on 24 x 24: a 7 x 7 Gaussian, 0.8 on the diagonal blocks and 0.1 off
    them, with the padding ``mode``."""
    t = np.arange(-3, 4)
    g = np.exp(-(t**2) / 4)
    kernel = np.outer(g, g) / np.outer(g, g).sum()
    weight = np.array([[kernel * (0.8 if i == j else 0.1) for j in range(3)] for i in range(3)])
    return tc.Conv(weight, (3, 24, 24), padding=3, padding_mode=mode)
