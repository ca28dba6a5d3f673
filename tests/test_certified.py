"""Certified norms against PyTorch: the dense matrix of each random layer is PyTorch's
conv (or autograd's adjoint, for conv-transposes) applied to unit vectors, in float64 or
complex128, and its singular values numpy's SVD. No code of the package builds the
truth: a bracket computed on a wrong matrix (a dropped stride, a wrong pad) fails here.

The dense SVD is itself accurate to about 1e-15 of the largest singular value;
the brackets are compared with that slack and no more.
"""

import math

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch
from hypothesis import HealthCheck, given, settings
from oracles import dense_matrix as _dense
from strategies import examples, layer_cases, transpose_cases

import toeplitz_conv as tc
from toeplitz_conv.spectra.brackets import CertifiedWidthWarning

SLACK = 1e-12  # relative to sigma_max: the dense oracle's own rounding, with room
RTOL = 1e-6
EPS = np.finfo(np.float64).eps


def _singular_values(dense) -> np.ndarray:
    return np.linalg.svd(dense, compute_uv=False)


def _case_truth(case, transposed: bool) -> np.ndarray:
    oracle = dict(
        stride=case.stride,
        pads=case.pads,
        dilation=case.dilation,
        groups=case.groups,
        mode=case.mode,
    )
    if transposed:
        oracle["output_padding"] = case.output_padding
    return _singular_values(_dense(case.weight, case.input_shape, transposed=transposed, **oracle))


def _conv_truth(
    weight, input_shape, *, stride=1, padding=0, dilation=1, groups=1, mode="zeros"
) -> np.ndarray:
    """The truth of a Conv built with int stride, padding and dilation on every axis."""
    d = np.ndim(weight) - 2
    oracle = dict(
        stride=(stride,) * d,
        pads=((padding, padding),) * d,
        dilation=(dilation,) * d,
        groups=groups,
        mode=mode,
    )
    return _singular_values(_dense(weight, input_shape, **oracle))


def _build(case, transposed: bool):
    cls = tc.ConvTranspose if transposed else tc.Conv
    return cls(case.weight, case.input_shape, **case.kwargs())


def _assert_contains(bounds, value, scale):
    assert bounds.lower <= value + SLACK * scale, (bounds, value)
    assert value <= bounds.upper + SLACK * scale, (bounds, value)


SETTINGS = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(case=layer_cases())
def test_norm_bounds_bracket_sigma_max_of_random_convs(case):
    _check_norm_bounds(_build(case, False), _case_truth(case, False))


@SETTINGS
@given(case=transpose_cases())
def test_norm_bounds_bracket_sigma_max_of_random_conv_transposes(case):
    _check_norm_bounds(_build(case, True), _case_truth(case, True))


def _check_norm_bounds(op, values):
    top = values[0]
    bounds = tc.norm_bounds(op, rtol=RTOL)
    _assert_contains(bounds, top, top)
    assert bounds.relative_width <= RTOL or top == 0
    symbol = tc.norm_bounds(op, method="symbol")  # the bound that needs no factorization
    _assert_contains(symbol, top, top)


@SETTINGS
@given(case=layer_cases(dtypes=(np.float64, np.complex128)))
@pytest.mark.filterwarnings("ignore::toeplitz_conv.spectra.brackets.CertifiedWidthWarning")
def test_min_singular_value_bounds_bracket_sigma_min(case):
    _check_min_and_condition(_build(case, False), _case_truth(case, False))


@SETTINGS
@given(case=transpose_cases(dtypes=(np.float64, np.complex128)))
@pytest.mark.filterwarnings("ignore::toeplitz_conv.spectra.brackets.CertifiedWidthWarning")
def test_min_condition_and_counts_of_random_conv_transposes(case):
    op = _build(case, True)
    values = _case_truth(case, True)
    _check_min_and_condition(op, values)
    _check_counts(op, values)


def _check_min_and_condition(op, values):
    smallest, top = values[-1], values[0]
    bounds = tc.min_singular_value_bounds(op, rtol=RTOL)
    _assert_contains(bounds, smallest, top)
    # the Gram matrix squares the condition number: its rounding limits the width
    floor = 1e4 * EPS * (top / smallest) ** 2 if smallest > 1e-150 * top else math.inf
    assert bounds.relative_width <= max(RTOL, floor), bounds
    condition = tc.condition_number_bounds(op, rtol=RTOL)
    if smallest > 1e-6 * top:  # well conditioned: the bracket holds the dense ratio
        truth = top / smallest
        assert condition.lower <= truth * (1 + 1e-9) and truth <= condition.upper * (1 + 1e-9)
    elif top == 0:  # the zero matrix: singular, kappa = inf by convention
        assert condition.lower == condition.upper == math.inf
    else:  # (nearly) singular: only the lower end is informative
        assert condition.lower <= top / max(smallest, 1e-300) * (1 + 1e-9)


def test_counts_on_a_gram_side_past_one_ldl_block():
    """288 pixels on the Gram side: the blocked LDL^H runs more than one block of 256."""
    from toeplitz_conv.spectra.banded import LDL_BLOCK

    rng = np.random.default_rng(5)
    weight = rng.standard_normal((2, 2, 3, 3))
    op = tc.Conv(weight, (2, 12, 12), padding=1)
    assert min(op.shape) > LDL_BLOCK
    values = _conv_truth(weight, (2, 12, 12), padding=1)
    for threshold in np.quantile(values, [0.1, 0.5, 0.9]) * 1.0001:
        if np.abs(values - threshold).min() > 1e-8 * values[0]:
            assert tc.count_singular_values(op, float(threshold)) == int((values > threshold).sum())


def test_the_sampled_symbol_estimate_still_gives_a_proven_bracket(monkeypatch):
    """Many frequencies: the estimate samples a coarse grid and refines around its best
    points (forced here by a tiny exact-estimate budget); the proof covers every frequency."""
    from toeplitz_conv.spectra import symbol

    monkeypatch.setattr(symbol, "EXACT_ESTIMATE_FLOPS", 1e3)
    rng = np.random.default_rng(6)
    weight = rng.standard_normal((2, 2, 3, 3))
    op = tc.Conv(weight, (2, 16, 16), padding=1, padding_mode="circular")
    values = _conv_truth(weight, (2, 16, 16), padding=1, mode="circular")
    _assert_contains(tc.norm_bounds(op), values[0], values[0])
    _assert_contains(tc.min_singular_value_bounds(op), values[-1], values[0])


@SETTINGS
@given(case=layer_cases(dtypes=(np.float64, np.complex128)))
def test_counts_equal_dense_counts_away_from_ties(case):
    _check_counts(_build(case, False), _case_truth(case, False))


def _check_counts(op, values):
    rng = np.random.default_rng(len(values))
    for threshold in rng.uniform(0, 1.2 * values[0], size=3):
        gap = np.abs(values - threshold).min()
        try:
            count = tc.count_singular_values(op, float(threshold))
        except ValueError as error:  # refused: only when the threshold is near a value
            assert "within rounding" in str(error)
            assert gap <= 1e-6 * values[0], (gap, values[0])
            continue
        if gap > 1e-9 * values[0]:
            assert count == int((values > threshold).sum())


def test_count_on_a_singular_value_is_refused():
    identity = tc.Conv(np.ones((1, 1, 1, 1)), (1, 4, 4))  # every singular value is 1
    assert tc.count_singular_values(identity, 0.5) == 16
    assert tc.count_singular_values(identity, 1.5) == 0
    with pytest.raises(ValueError, match="within rounding of a singular value") as raised:
        tc.count_singular_values(identity, 1.0)
    assert raised.value.parameter == "threshold"


def test_condition_number_bounds_bracket_the_dense_condition_number():
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((3, 2, 3, 3))
    op = tc.Conv(weight, (2, 8, 7), padding=1, padding_mode="reflect")
    values = _conv_truth(weight, (2, 8, 7), padding=1, mode="reflect")
    bounds = tc.condition_number_bounds(op)
    assert bounds.lower <= values[0] / values[-1] <= bounds.upper
    assert bounds.relative_width < 1e-5


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_every_symbol_bound_is_at_or_above_the_truth(mode, stride):
    rng = np.random.default_rng(stride)
    weight = rng.standard_normal((4, 3, 3, 3))
    op = tc.Conv(weight, (3, 11, 10), stride=stride, padding=2, padding_mode=mode)
    top = _conv_truth(weight, (3, 11, 10), stride=stride, padding=2, mode=mode)[0]
    bounds = tc.norm_bounds(op, method="symbol")
    _assert_contains(bounds, top, top)
    if mode == "zeros":  # a submatrix of a circular layer on a period a little longer
        assert bounds.upper <= 1.2 * top


def test_the_symbol_bound_is_close_for_a_large_zero_padded_layer():
    # 64 -> 64 channels on 48 x 48: the band would need 10 GB; the symbol bound 1 GB at most
    rng = np.random.default_rng(0)
    op = tc.Conv(rng.standard_normal((64, 64, 3, 3)), (64, 48, 48), padding=1)
    bounds = tc.norm_bounds(op, max_bytes=10**9)
    assert bounds.method.startswith("symbol bound")
    reference = tc.spectral_norm(op, rtol=1e-9)  # Lanczos, from below
    assert bounds.lower <= reference * (1 + 1e-9) <= bounds.upper * (1 + 1e-9)
    assert bounds.upper <= 1.02 * reference


def test_methods_and_errors():
    op = tc.Conv(np.ones((2, 2, 3)), (2, 9), padding=1)
    with pytest.raises(ValueError, match="method must be one of"):
        tc.norm_bounds(op, method="guess")
    with pytest.raises(ValueError, match="rtol must be in"):
        tc.norm_bounds(op, rtol=0)
    with pytest.raises(ValueError, match="method='exact' needs circular padding"):
        tc.norm_bounds(op, method="exact")
    with pytest.raises(TypeError, match="op must be a toeplitz_conv"):
        tc.norm_bounds(np.eye(3))
    with pytest.raises(tc.MatrixTooLargeError):
        tc.norm_bounds(op, method="factorization", max_bytes=100)
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        tc.count_singular_values(op, -1.0)


def test_float32_layers_are_bracketed_as_their_exact_matrices():
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    op = tc.Conv(weight, (2, 9, 9), padding=1)
    top = _conv_truth(weight, (2, 9, 9), padding=1)[0]
    bounds = tc.norm_bounds(op)
    _assert_contains(bounds, top, top)
    assert bounds.relative_width <= RTOL


def test_conv_layers_and_the_lipschitz_report_of_a_torch_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(6, 6, 3, stride=2, padding=1, padding_mode="circular", groups=2),
        torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(6, 2, 4, stride=2, padding=1),
    ).double()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    layers = tc.conv_layers(model, x)
    assert [name for name, _ in layers] == ["0", "2", "4"]
    # each operator is its module at the input it sees
    h = x[:1]
    with torch.no_grad():
        for (_, op), module in zip(layers, (model[0], model[2], model[4])):
            expected = module(h).numpy()
            np.testing.assert_allclose(op.apply(h.numpy()), expected, atol=1e-12)
            h = torch.relu(module(h))
    lines = []
    report = tc.lipschitz_report(model, x, echo=lines.append)
    tops = [
        _conv_truth(model[0].weight.detach().numpy(), (3, 12, 12), padding=1)[0],
        _conv_truth(
            model[2].weight.detach().numpy(),
            (6, 12, 12),
            stride=2,
            padding=1,
            groups=2,
            mode="circular",
        )[0],
        _singular_values(
            _dense(
                model[4].weight.detach().numpy(),
                (6, 6, 6),
                transposed=True,
                stride=(2, 2),
                pads=((1, 1), (1, 1)),
                dilation=(1, 1),
                groups=1,
                mode="zeros",
                output_padding=(0, 0),
            )
        )[0],
    ]
    for row, top in zip(report.rows, tops):
        _assert_contains(row.bounds, top, top)
    assert report.product_upper >= math.prod(tops) * (1 - 1e-12)
    assert "product of the upper bounds" in lines[0] and "circular" in lines[0]


@pytest.mark.parametrize("scale", [0.0, 1e-200, 1e150])
def test_brackets_hold_for_weights_near_the_ends_of_the_double_range(scale):
    rng = np.random.default_rng(1)
    weight = scale * rng.standard_normal((2, 2, 3, 3))
    op = tc.Conv(weight, (2, 6, 6), padding=1)
    values = _conv_truth(weight, (2, 6, 6), padding=1)
    for method in ("auto", "symbol"):
        _assert_contains(tc.norm_bounds(op, method=method), values[0], values[0])
    _assert_contains(tc.min_singular_value_bounds(op), values[-1], values[0])
    if scale:
        assert tc.norm_bounds(op).relative_width <= RTOL
        threshold = float(np.median(values)) * 1.0123
        assert tc.count_singular_values(op, threshold) == int((values > threshold).sum())


def test_a_bracket_wider_than_rtol_from_the_fallback_warns_and_says_why():
    """The symbol bound's fallback (the factorization over the budget) returned a bracket
    0.5 wide for rtol 1e-3 without the CertifiedWidthWarning the docs promise (#34)."""
    t = np.arange(-3, 4)
    g = np.exp(-(t**2) / 4)
    kernel = np.outer(g, g) / np.outer(g, g).sum()
    # taps of both signs: the Collatz-Wielandt bound of one-signed layers does not apply
    weight = np.array([[kernel * (0.8 if i == j else -0.1) for j in range(3)] for i in range(3)])
    op = tc.Conv(weight, (3, 16, 16), padding=3, padding_mode="reflect")
    with pytest.warns(CertifiedWidthWarning, match="does not fit the memory budget"):
        bounds = tc.norm_bounds(op, rtol=1e-3, max_bytes=2 * 10**6)
    assert bounds.relative_width > 1e-3 and bounds.method.startswith("symbol bound")
    top = np.linalg.svd(op.todense(), compute_uv=False)[0]
    _assert_contains(bounds, top, top)


def test_a_large_reflect_blur_is_bracketed_to_rtol_without_a_factorization():
    """#32: 3 -> 3 7 x 7 reflect blur on 256 x 256 was [1.0030, 2.0066] (the symbol bound);
    the Collatz-Wielandt bound brackets it to rtol 1e-3 at the memory of a few vectors.
    The oracle is ARPACK's largest eigenvalue of A^T A (independent of the proof)."""
    t = np.arange(-3, 4)
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * 1.6**2))
    mixing = np.full((3, 3), 0.12) + 0.64 * np.eye(3)
    op = tc.Conv(
        mixing[:, :, None, None] * g / g.sum(), (3, 256, 256), padding=3, padding_mode="reflect"
    )
    bounds = tc.norm_bounds(op, rtol=1e-3, max_bytes=2 * 10**8)
    assert bounds.relative_width <= 1e-3
    gram = spla.LinearOperator((op.shape[1],) * 2, matvec=lambda v: op.rmatvec(op.matvec(v)))
    top = math.sqrt(spla.eigsh(gram, k=1, which="LA", tol=1e-10)[0][0])
    assert bounds.lower <= top * (1 + 1e-9) and top <= bounds.upper
