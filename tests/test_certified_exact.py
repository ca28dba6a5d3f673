"""Certified brackets against exact ground truth on tiny adversarial layers.

The truth is the layer's matrix rebuilt in rational arithmetic from PyTorch's
definitions (tests/exact_oracle.py, no code of the package), with singular values
from mpmath at 60 digits. The layers are the ones where floating point is weakest:
taps folded onto one entry by reflect, replicate and wrapping circular padding,
nearly or exactly cancelling (1e-3 down to total), weights near the ends of the
double range, and strides, dilations, groups and conv-transposes around them.
"""

from __future__ import annotations

import math
import signal
import warnings
from contextlib import contextmanager

import mpmath
import numpy as np
import pytest
from exact_oracle import conv_matrix, conv_transpose_matrix, singular_values

import toeplitz_conv as tc
from toeplitz_conv.spectra.brackets import CertifiedWidthWarning

HANG_SECONDS = 60  # a guard that turns a hang into a failure, not a timing


@contextmanager
def ends_within(seconds: int):
    def alarm(*_):
        raise TimeoutError(f"did not end within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _pairs(padding, d):
    if isinstance(padding, int):
        return ((padding, padding),) * d
    return tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)


def _case(weight, input_shape, *, transposed=False, **kwargs):
    """The operator and its exact singular values."""
    weight = np.asarray(weight)
    d = weight.ndim - 2
    stride = kwargs.get("stride", (1,) * d)
    dilation = kwargs.get("dilation", (1,) * d)
    stride = (stride,) * d if isinstance(stride, int) else tuple(stride)
    dilation = (dilation,) * d if isinstance(dilation, int) else tuple(dilation)
    pads = _pairs(kwargs.get("padding", 0), d)
    groups = kwargs.get("groups", 1)
    mode = kwargs.get("padding_mode", "zeros")
    if transposed:
        output_padding = kwargs.get("output_padding", 0)
        if isinstance(output_padding, int):
            output_padding = (output_padding,) * d
        op = tc.ConvTranspose(weight, input_shape, **kwargs)
        exact = conv_transpose_matrix(
            weight,
            input_shape,
            stride=stride,
            pads=pads,
            dilation=dilation,
            groups=groups,
            output_padding=output_padding,
            mode=mode,
        )
    else:
        op = tc.Conv(weight, input_shape, **kwargs)
        exact = conv_matrix(
            weight,
            input_shape,
            stride=stride,
            pads=pads,
            dilation=dilation,
            groups=groups,
            mode=mode,
        )
    assert exact["shape"] == op.shape
    return op, singular_values(exact)


def _near_zero_sum(rng, shape, cancellation):
    """Taps whose sum along the last axis is ``cancellation`` times their size."""
    w = rng.uniform(0.1, 1.0, shape) * rng.choice([-1.0, 1.0], shape)
    w[..., -1] = -w[..., :-1].sum(axis=-1) + cancellation
    return w


CANCELLATIONS = (1e-3, 1e-6, 1e-9, 1e-12, 0.0)


def _cases():
    rng = np.random.default_rng(20)
    yield (
        "issue: replicate 1x1",
        dict(weight=[[[0.1, 0.2, -0.3]]], input_shape=(1, 1), padding=1, padding_mode="replicate"),
    )
    yield (
        "issue: 1e-4 cancellation",
        dict(
            weight=[[[0.7, 0.3001, -1.0]]], input_shape=(1, 1), padding=1, padding_mode="replicate"
        ),
    )
    for c in CANCELLATIONS:
        # every tap of the window on one entry: the whole matrix is the cancelling sum
        yield (
            f"replicate 1x1 {c}",
            dict(
                weight=_near_zero_sum(rng, (1, 1, 3, 3), c / 3),
                input_shape=(1, 1, 1),
                padding=1,
                padding_mode="replicate",
            ),
        )
        yield (
            f"replicate 1x2 stride 2 groups 2 {c}",
            dict(
                weight=_near_zero_sum(rng, (2, 1, 3, 3), c / 3),
                input_shape=(2, 1, 2),
                padding=1,
                stride=2,
                groups=2,
                padding_mode="replicate",
            ),
        )
        yield (
            f"circular 1x1 stride 2 {c}",
            dict(
                weight=_near_zero_sum(rng, (1, 1, 3, 3), c / 3),
                input_shape=(1, 1, 1),
                padding=((1, 2), (1, 2)),
                stride=2,
                padding_mode="circular",
            ),
        )
        yield (
            f"reflect pairs {c}",
            dict(
                weight=[[[0.3, 0.0, -0.3 + c]]],
                input_shape=(1, 2),
                padding=1,
                padding_mode="reflect",
            ),
        )
        for mode in ("reflect", "replicate"):
            yield (
                f"1-D {mode} {c}",
                dict(
                    weight=_near_zero_sum(rng, (1, 1, 3), c),
                    input_shape=(1, 2),
                    padding=1,
                    padding_mode=mode,
                ),
            )
            yield (
                f"2-D {mode} stride 2 {c}",
                dict(
                    weight=_near_zero_sum(rng, (2, 1, 3, 3), c),
                    input_shape=(2, 3, 3),
                    padding=2,
                    stride=2,
                    groups=2,
                    padding_mode=mode,
                ),
            )
            yield (
                f"2-D {mode} dilation 2 {c}",
                dict(
                    weight=_near_zero_sum(rng, (1, 2, 2, 3), c),
                    input_shape=(2, 3, 3),
                    padding=2,
                    dilation=(1, 2),
                    padding_mode=mode,
                ),
            )
        yield (
            f"circular wraps, stride 2 {c}",
            dict(
                weight=_near_zero_sum(rng, (1, 1, 1, 5), c),
                input_shape=(1, 1, 2),
                padding=(0, 2),
                stride=(1, 2),
                padding_mode="circular",
            ),
        )
        yield (
            f"circular wraps, stride 3 not dividing {c}",
            dict(
                weight=_near_zero_sum(rng, (2, 1, 4), c),
                input_shape=(1, 2),
                padding=3,
                stride=3,
                padding_mode="circular",
            ),
        )
        yield (
            f"complex replicate {c}",
            dict(
                weight=_near_zero_sum(rng, (1, 1, 3), c) * (1 + 1j)
                + 1j * _near_zero_sum(rng, (1, 1, 3), c),
                input_shape=(1, 2),
                padding=1,
                padding_mode="replicate",
                dtype=np.complex128,
            ),
        )
        yield (
            f"transpose reflect {c}",
            dict(
                weight=_near_zero_sum(rng, (1, 2, 3), c),
                input_shape=(1, 3),
                padding=1,
                stride=2,
                padding_mode="reflect",
                transposed=True,
            ),
        )
        yield (
            f"transpose output_padding >= stride {c}",
            dict(
                weight=_near_zero_sum(rng, (1, 1, 3), c),
                input_shape=(1, 2),
                padding=1,
                stride=1,
                dilation=3,
                output_padding=2,
                transposed=True,
            ),
        )
    yield (
        "zeros 3-D",
        dict(weight=rng.standard_normal((2, 1, 2, 2, 1)), input_shape=(1, 2, 2, 3), padding=1),
    )
    for scale in (2.0**1000, 2.0**-1000, 2.0**-1060):
        yield (
            f"magnitude {scale:.1e}",
            dict(
                weight=_near_zero_sum(rng, (1, 1, 3), 1e-6) * scale,
                input_shape=(1, 3),
                padding=1,
                padding_mode="replicate",
            ),
        )
    yield (
        "mixed 1e300 and subnormal",
        dict(
            weight=[[[1e300, 3e-320, -1e300]]],
            input_shape=(1, 3),
            padding=1,
            padding_mode="reflect",
        ),
    )


CASES = dict(_cases())


def _contains(bounds, value) -> bool:
    return mpmath.mpf(bounds.lower) <= value <= mpmath.mpf(bounds.upper)


@pytest.mark.parametrize("name", list(CASES))
def test_every_bracket_holds_the_exact_singular_values(name):
    kwargs = dict(CASES[name])
    transposed = kwargs.pop("transposed", False)
    op, values = _case(
        kwargs.pop("weight"), kwargs.pop("input_shape"), transposed=transposed, **kwargs
    )
    top, bottom = values[0], values[-1]
    with warnings.catch_warnings(), ends_within(HANG_SECONDS):
        warnings.simplefilter("ignore", CertifiedWidthWarning)
        for method in ("auto", "factorization", "symbol"):
            bounds = tc.norm_bounds(op, method=method)
            assert _contains(bounds, top), (method, bounds, top)
            assert math.isfinite(bounds.upper)
        smallest = tc.min_singular_value_bounds(op)
        assert _contains(smallest, bottom), (smallest, bottom)
        condition = tc.condition_number_bounds(op)
        if bottom == 0:
            assert condition.upper == math.inf
        else:
            assert _contains(condition, top / bottom), (condition, top / bottom)
        _check_counts(op, values)


def _check_counts(op, values):
    """A count is the truth or a refusal; thresholds well apart from every singular value
    (by 1e-6 of the weight's l1 norm: the Gram matrix resolves squares to its rounding)
    are never refused."""
    top = values[0]
    scale = mpmath.mpf(float(np.abs(op.weight).sum()))
    distinct = sorted(set(values))
    thresholds = [mpmath.mpf(0), 2 * top + 1, *distinct]
    thresholds += [(a + b) / 2 for a, b in zip(distinct, distinct[1:])]
    for tau in thresholds:
        threshold = float(tau)
        truth = sum(1 for v in values if v > threshold)
        gap = min(abs(mpmath.mpf(threshold) - v) for v in values)
        try:
            count = tc.count_singular_values(op, threshold)
        except tc.ParameterError:
            assert gap <= 1e-6 * scale, (threshold, values)
            continue
        assert count == truth, (threshold, count, truth, values)


def test_issue_cases_are_no_longer_wrong():
    op = tc.Conv([[[0.1, 0.2, -0.3]]], (1, 1), padding=1, padding_mode="replicate")
    truth = 2.7755575615628914e-17
    with pytest.warns(CertifiedWidthWarning):
        bounds = tc.norm_bounds(op)
    assert bounds.lower <= truth <= bounds.upper
    with pytest.raises(tc.ParameterError, match="threshold"):
        tc.count_singular_values(op, 4.2e-17)  # within rounding: refused, never 1


@pytest.mark.parametrize(
    "weight, input_shape, kwargs",
    [
        (np.array([[[[0, 1, 0], [1, -4, 1], [0, 1, 0]]]], float), (1, 1, 1), dict(padding=1)),
        (np.array([[[[1, 0, -1], [2, 0, -2], [1, 0, -1]]]], float), (1, 1, 8), dict(padding=1)),
        # sigma_min 1e-9 lies below what a Cholesky proof resolves: its lower end gives up
        (np.array([[[[0, 1, 0], [1, -4 + 1e-9, 1], [0, 1, 0]]]]), (1, 1, 3), dict(padding=1)),
    ],
    ids=["laplacian 1x1", "sobel 1x8", "laplacian 1e-9 1x3"],
)
def test_zero_sum_kernels_on_tiny_circular_maps_end_with_a_valid_bracket(
    weight, input_shape, kwargs
):
    op, values = _case(weight, input_shape, padding_mode="circular", **kwargs)
    with warnings.catch_warnings(), ends_within(HANG_SECONDS):
        warnings.simplefilter("ignore", CertifiedWidthWarning)
        for method in ("auto", "factorization", "symbol"):
            bounds = tc.norm_bounds(op, method=method)
            assert _contains(bounds, values[0]), (method, bounds, values[0])
        smallest = tc.min_singular_value_bounds(op)  # the lower end's proof gives up to 0
        assert _contains(smallest, values[-1]), (smallest, values[-1])


def test_symbol_cost_follows_the_matrix_not_the_dilation():
    weight = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    op, values = _case(weight, (1, 1, 1), padding=3000, dilation=3000)
    with ends_within(HANG_SECONDS):
        bounds = tc.norm_bounds(op, method="symbol")
    assert _contains(bounds, values[0])
    assert "period (1, 1)" in bounds.method


def test_huge_weights_give_finite_brackets_or_name_the_overflow():
    op, values = _case(np.array([[[1.0, 1.5, 1.0]]]) * 2.0**1023, (1, 1), padding=1)
    bounds = tc.norm_bounds(op)  # the 1 x 1 matrix 1.5 x 2^1023: a finite norm
    assert _contains(bounds, values[0]) and math.isfinite(bounds.upper)
    big = tc.Conv(np.full((1, 1, 3, 3), 8e307), (1, 4, 4), padding=1, padding_mode="circular")
    with pytest.raises(tc.ParameterError, match="largest double"):
        tc.norm_bounds(big)  # 9 x 8e307 is no double


def test_subnormal_weights_are_bracketed_not_refused():
    op, values = _case([[[5e-324, 1e-320, -4e-320]]], (1, 4), padding=1)
    bounds = tc.norm_bounds(op)
    assert _contains(bounds, values[0])
    assert bounds.upper < 1e-300


def test_rtol_floor_is_refused_and_a_small_rtol_is_honoured_or_warned():
    op = tc.Conv(
        np.random.default_rng(0).standard_normal((2, 2, 3)),
        (2, 6),
        padding=1,
        padding_mode="circular",
    )
    for rtol in (1e-300, 1e-16, 0.0, 1.0):
        with pytest.raises(tc.ParameterError, match="rtol"):
            tc.norm_bounds(op, rtol=rtol)
    for method in ("auto", "factorization"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            bounds = tc.norm_bounds(op, rtol=1e-14, method=method)
        warned = any(issubclass(w.category, CertifiedWidthWarning) for w in caught)
        assert bounds.relative_width <= 1e-14 or warned
    narrow = tc.norm_bounds(op, rtol=1e-12)
    assert narrow.relative_width <= 1e-12  # the per-frequency proof follows rtol


def test_count_far_above_the_norm_is_zero_without_overflow():
    op = tc.Conv(np.ones((1, 1, 3)), (1, 5), padding=1)
    assert tc.count_singular_values(op, 1e300) == 0
    tiny = tc.Conv(np.full((1, 1, 3), 1e-300), (1, 5), padding=1)
    assert tc.count_singular_values(tiny, 1e300) == 0


def test_zero_weight_condition_number_is_infinite_with_zero_width():
    op = tc.Conv(np.zeros((1, 1, 3)), (1, 5), padding=1)
    bounds = tc.condition_number_bounds(op)
    assert bounds.upper == math.inf and bounds.relative_width == 0.0


def test_the_scaled_twin_charges_exactly_the_taps_that_fell_below_the_normal_range():
    from fractions import Fraction

    from toeplitz_conv.spectra.brackets import scaled_twin

    plain = scaled_twin(tc.Conv(np.array([[[0.5, -3.0, 1e-300]]]), (1, 4), padding=1))
    assert plain.error == 0.0
    weight = np.array([[[1e300, 3e-320, -1e300]]])
    twin = scaled_twin(tc.Conv(weight, (1, 4), padding=1))
    moved = max(
        abs(Fraction(float(b)) - Fraction(float(w)) / 2**twin.exponent)
        for b, w in zip(twin.operator.weight.ravel(), weight.ravel())
    )
    assert moved > 0 and twin.error >= moved  # a tap moved, and the charge covers it


def test_an_infinite_upper_end_is_a_bracket_of_width_one():
    # a circular difference: square and singular (constants are in its null space)
    op = tc.Conv(np.array([[[1.0, -1.0]]]), (1, 4), padding=((0, 1),), padding_mode="circular")
    condition = tc.condition_number_bounds(op)
    assert condition.upper == math.inf and condition.relative_width == 1.0
    assert tc.NormBounds(1.0, math.inf, "x").relative_width == 1.0


def test_a_norm_at_the_rounding_level_is_bounded_by_the_rounding_not_by_the_taps():
    op = tc.Conv([[[0.1, 0.2, -0.3]]], (1, 1), padding=1, padding_mode="replicate")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CertifiedWidthWarning)
        bounds = tc.norm_bounds(op, method="factorization")
    assert bounds.upper < 1e-14  # the proof's floor, far below || |A| || = 0.6


def test_the_symbol_bound_is_wide_by_design_and_does_not_warn():
    op = tc.Conv(np.random.default_rng(3).standard_normal((2, 2, 3, 3)), (2, 9, 9), padding=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CertifiedWidthWarning)
        bounds = tc.norm_bounds(op, method="symbol")
    assert bounds.relative_width > 1e-6  # wider than rtol, and no warning


ONE_SIGNED = dict(
    folded_reflect=dict(
        weight=[[[0.5, 1.0, 2.0, 1.0, 0.25]]], input_shape=(1, 3), padding=2, padding_mode="reflect"
    ),
    folded_replicate_2d=dict(
        weight=np.full((2, 2, 3, 3), 0.3),
        input_shape=(2, 2, 3),
        padding=2,
        padding_mode="replicate",
        dilation=(1, 2),
    ),
    wrapped_circular=dict(
        weight=[[[1.0, 3.0, 1.0, 2.0]]], input_shape=(1, 2), padding=3, padding_mode="circular"
    ),
    huge=dict(
        weight=[[[1e300, 2e300, 1e300]]], input_shape=(1, 4), padding=1, padding_mode="reflect"
    ),
    subnormal=dict(weight=[[[3e-320, 1e-310, 5e-324]]], input_shape=(1, 5), padding=1),
    negative_strided_groups=dict(
        weight=-np.arange(1.0, 9.0).reshape(4, 1, 2),
        input_shape=(2, 7),
        stride=2,
        groups=2,
        padding=1,
        padding_mode="replicate",
    ),
    transposed=dict(
        weight=np.arange(1.0, 13.0).reshape(2, 3, 2),
        input_shape=(2, 3),
        stride=2,
        padding=1,
        transposed=True,
    ),
)


@pytest.mark.parametrize("name", list(ONE_SIGNED))
def test_the_collatz_wielandt_bracket_holds_the_exact_norm(name):
    """One-signed layers where rounding is weakest: the matrix-free bracket contains the
    exact norm (mpmath, 60 digits) and reaches its rtol."""
    kwargs = dict(ONE_SIGNED[name])
    transposed = kwargs.pop("transposed", False)
    op, values = _case(
        kwargs.pop("weight"), kwargs.pop("input_shape"), transposed=transposed, **kwargs
    )
    with ends_within(HANG_SECONDS):
        bounds = tc.norm_bounds(op, method="perron", rtol=1e-9)
        assert _contains(bounds, values[0]), (bounds, values[0])
        assert bounds.relative_width <= 1e-9 or bounds.upper < 1e-300
        assert tc.norm_bounds(op).method == bounds.method  # "auto" takes it


def test_perron_refuses_taps_of_both_signs_and_complex_ones():
    op = tc.Conv(np.array([[[1.0, -2.0]]]), (1, 4))
    with pytest.raises(ValueError, match="one sign"):
        tc.norm_bounds(op, method="perron")
    op = tc.Conv(np.array([[[1.0 + 1j, 2.0]]]), (1, 4))
    with pytest.raises(ValueError, match="one sign"):
        tc.norm_bounds(op, method="perron")


def test_the_factorization_asked_beyond_the_budget_is_refused_before_it_is_built():
    """#32: method='factorization' grew past 10 GB on a 256 x 256 reflect layer."""
    t = np.exp(-(np.arange(-3, 4) ** 2) / 5.0)
    weight = np.outer(t, t)[None, None] * np.full((3, 3, 1, 1), 0.2)
    op = tc.Conv(weight, (3, 256, 256), padding=3, padding_mode="reflect")
    with ends_within(HANG_SECONDS), pytest.raises(tc.MatrixTooLargeError, match="factorization"):
        tc.norm_bounds(op, method="factorization", max_bytes=10**9)
