"""Hand-made mutants of the proof, check and solve modules, each run against the tests
that should kill it: a bounded mutation check (#23, #33). Prints one line per mutant,
KILLED or SURVIVED, and the count; exits 1 if any survived.

Run from the repository root: python tools/mutants.py [--seconds 1800] [--only solve/]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPECTRA = "toeplitz_conv/spectra"
EXACT = ["tests/test_certified_exact.py"]
CERTIFIED = ["tests/test_certified.py", *EXACT]
SOLVE = "toeplitz_conv/solve"
GUARDS = ["tests/test_solve_guards.py"]
SOLVES = ["tests/test_solve.py", *GUARDS]
# (file, original text, mutated text, tests that should fail)
MUTANTS = [
    # --- solve/ (#33): the bugs the suite let through, then a few it already caught ---
    (
        f"{SOLVE}/fourier.py",
        'key = cache_key(op, "tikhonov-fourier", half, float(damp))',
        'key = cache_key(op, "tikhonov-fourier", half)',
        SOLVES,
    ),  # a second damp gets the first damp's factors
    (
        f"{SOLVE}/algebra.py",
        "    return (name, op.transposed, op.conjugated, *values)",
        "    return (name, op.conjugated, *values)",
        SOLVES,
    ),  # the conv-transpose view gets the conv's factors
    (
        f"{SOLVE}/cosine.py",
        'key = cache_key(op, "tikhonov-cosine", float(damp))',
        'key = cache_key(op, "tikhonov-cosine")',
        SOLVES,
    ),
    (
        f"{SOLVE}/fourier.py",
        'key = cache_key(op, "normal-inverse", half, float(damp))',
        'key = cache_key(op, "normal-inverse", half)',
        SOLVES,
    ),
    (
        f"{SOLVE}/cosine.py",
        'key = cache_key(op, "cosine-inverses", kind, float(damp))',
        'key = cache_key(op, "cosine-inverses", kind)',
        SOLVES,
    ),
    (
        f"{SOLVE}/_frequency_numba.py",
        "_multiply_add(gram[i, j], a, b, True, False, n)",
        "_multiply_add(gram[i, j], a, b, False, False, n)",
        GUARDS,
    ),  # the compiled Gram K^H K without its conjugate
    (
        f"{SOLVE}/_frequency_numba.py",
        "_multiply_add(gram[i, j], a, b, False, True, n)",
        "_multiply_add(gram[i, j], a, b, False, False, n)",
        GUARDS,
    ),  # and K K^H
    (
        f"{SOLVE}/cosine.py",
        "return eigen.singular_values(), eigen.coefficients(b_hat), b_hat, 1",
        "return eigen.singular_values(), eigen.coefficients(b_hat), b_hat, b_hat.shape[1]",
        SOLVES,
    ),  # the cosine spectra counted over the wrong number of points
    (
        f"{SOLVE}/cosine.py",
        "return (*singular_coefficients(cosine_symbols(self.op, self.basis), b_hat), b_hat, 1)",
        "return (*singular_coefficients(cosine_symbols(self.op, self.basis), b_hat), b_hat, 2)",
        SOLVES,
    ),
    (
        f"{SOLVE}/reflect.py",
        "rhs_norm = math.sqrt(max(np.vdot(rhs, boundary_form(rhs.copy(), spatial, -0.5))"
        ".real, 0.0))",
        "rhs_norm = float(np.linalg.norm(rhs))",
        GUARDS,
    ),  # the reflect path's stopping norm unweighted
    (
        "toeplitz_conv/core/weights.py",
        "    return np.result_type(operator_dtype, x_dtype)",
        "    return np.result_type(operator_dtype, "
        "np.float16 if x_dtype.kind != 'c' else np.complex64)",
        GUARDS,
    ),  # products in the layer's precision: float32 CG
    (
        f"{SOLVE}/iterative.py",
        "given = [op.dtype, b.dtype] + ([] if x0 is None else [x0.dtype])",
        "given = [op.dtype, b.dtype]",
        GUARDS,
    ),  # a complex prior on a real layer, CG path
    (
        f"{SOLVE}/fourier.py",
        "np.iscomplexobj(b) or np.iscomplexobj(x0)",
        "np.iscomplexobj(b)",
        GUARDS,
    ),  # and Fourier path
    (
        f"{SOLVE}/tikhonov.py",
        "    if prior_beyond_data(sizes):\n        data, s",
        "    if False:\n        data, s",
        GUARDS,
    ),  # the shifted-data branch
    (
        "toeplitz_conv/interop/networks.py",
        "bounds = norm_bounds(op, rtol=rtol, max_bytes=max_bytes)",
        "bounds = norm_bounds(op, max_bytes=max_bytes)",
        ["tests/test_networks.py"],
    ),  # lipschitz_report ignores rtol
    (
        "toeplitz_conv/interop/networks.py",
        'label = name if seen[name] == 1 else f"{name}#{seen[name]}"',
        "label = name",
        ["tests/test_networks.py"],
    ),  # a module called twice: c, c
    (
        f"{SOLVE}/preconditioners.py",
        "    return op.layer.cached(key, lambda: _counterpart(op))",
        "    return _counterpart(op)",
        GUARDS,
    ),  # the circulant preconditioner refactorised on every call
    (
        f"{SOLVE}/algebra.py",
        "    shifted = values * values + damp * damp",
        "    shifted = values * values + damp",
        ["tests/test_solve_eigen.py", *SOLVES],
    ),
    (
        f"{SOLVE}/iterative.py",
        "        return op.rmatvec(op.matvec(v)) + shift * v",
        "        return op.rmatvec(op.matvec(v)) + damp * v",
        SOLVES,
    ),
    (
        f"{SOLVE}/reflect.py",
        "        rhs = rhs + shift * boundary_form(start.copy(), spatial, 1.0)",
        "        rhs = rhs + shift * start",
        ["tests/test_solve_reflect.py", *SOLVES],
    ),
    (
        f"{SPECTRA}/layer_gram.py",
        "    if most == 1:\n        return 0.0",
        "    if True:\n        return 0.0",
        CERTIFIED,
    ),  # the folded taps' rounding dropped
    (
        f"{SPECTRA}/layer_gram.py",
        "        most *= int(np.diff(edges).max())",
        "        most *= 1",
        EXACT,
    ),  # folds never counted
    (
        f"{SPECTRA}/layer_gram.py",
        "    rounding = (gamma(length) * bound + assembly_error(block.operator)) * bottom",
        "    rounding = gamma(length) * bound * bottom",
        EXACT,
    ),
    (f"{SPECTRA}/banded.py", "    if matrix_error:\n", "    if False:\n", EXACT),
    (
        f"{SPECTRA}/brackets.py",
        "    if np.array_equal(times_power_of_two(twin.weight, exponent), original):",
        "    if True:",
        EXACT,
    ),  # the underflow of scaling not charged
    (
        f"{SPECTRA}/brackets.py",
        "        if math.isinf(self.upper):\n            return 1.0",
        "        if False:\n            return 1.0",
        EXACT,
    ),
    (f"{SPECTRA}/brackets.py", "    if bounds.relative_width > rtol:", "    if False:", EXACT),
    (
        f"{SPECTRA}/certified.py",
        "    upper = max(start * (1 + step / 2), floor)",
        "    upper = start * (1 + step / 2)",
        EXACT,
    ),
    (
        f"{SPECTRA}/certified.py",
        "    return symbol_bounds(twin, budget), False",
        "    return symbol_bounds(twin, budget), True",
        EXACT,
    ),
    (
        f"{SPECTRA}/symbol.py",
        "needed = (max(largest, 0.0) + 2 * series.error) / (1 - 2 * relative_shift)",
        "needed = max(largest, 0.0)",
        EXACT,
    ),
    (
        f"{SPECTRA}/symbol.py",
        "    margin = max(min(rtol / 4, 1e-9), 8 * UNIT_ROUNDOFF)",
        "    margin = 1e-9",
        EXACT,
    ),
    (
        f"{SPECTRA}/symbol_bounds.py",
        '        live = _live_taps(g) if mode == "zeros" else',
        "        live = [(0, k - 1) for k in g.kernel] if True else",
        EXACT,
    ),
    (
        f"{SPECTRA}/symbol_bounds.py",
        "    rounding = gamma(length) * absolute_norm_bound(op) * bottom",
        "    rounding = 0.0",
        CERTIFIED,
    ),
    (
        f"{SPECTRA}/symbol_bounds.py",
        "        factor = math.sqrt(math.prod(read_multiplicity(g)))",
        "        factor = 1.0",
        CERTIFIED,
    ),
    (
        f"{SPECTRA}/singular_bounds.py",
        "    if twin.error and _count_above(",
        "    if False and _count_above(",
        EXACT,
    ),
    (
        f"{SPECTRA}/singular_bounds.py",
        "        delta = 4 * error + 8 * UNIT_ROUNDOFF * square + 1e-300",
        "        delta = 1e-300",
        CERTIFIED,
    ),
    (
        f"{SPECTRA}/singular_bounds.py",
        "    if denominator == 0:\n        return math.inf",
        "    if denominator == 0:\n        return 0.0",
        EXACT,
    ),
    (
        f"{SPECTRA}/layer_gram.py",
        "        matrix_error=assembly_error(block.operator),",
        "        matrix_error=0.0,",
        EXACT,
    ),
    (
        f"{SPECTRA}/spectral.py",
        "        if k >= n - 1:",
        "        if False:",
        ["tests/test_spectral.py"],
    ),
    (
        f"{SPECTRA}/spectral.py",
        "    return np.sort(np.sqrt(np.maximum(np.real(squares), 0.0)))[::-1]",
        "    return np.sort(np.maximum(np.real(squares), 0.0))[::-1]",
        ["tests/test_spectral.py"],
    ),
    (
        "toeplitz_conv/interop/adjoint.py",
        "DOT_FLOOR = 1e-3",
        "DOT_FLOOR = 1.0",
        ["tests/test_check_adjoint.py"],
    ),
    (
        "toeplitz_conv/interop/adjoint.py",
        "    scale = max(float(np.abs(b).max(initial=0.0)), np.finfo(float).tiny)",
        "    scale = max(float(np.abs(b).max(initial=0.0)), 1e6)",
        ["tests/test_check_adjoint.py"],
    ),
    (
        "toeplitz_conv/interop/adjoint.py",
        "    if _truncated(op):\n        # with",
        "    if False:\n        # with",
        ["tests/test_check_adjoint.py"],
    ),
]


def run(mutant, deadline: float) -> str:
    path, old, new, tests = mutant
    file = ROOT / path
    text = file.read_text()
    if text.count(old) != 1:
        return f"STALE (the original text is not found once in {path})"
    file.write_text(text.replace(old, new))
    try:
        timeout = max(10.0, deadline - time.monotonic())
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return "KILLED" if result.returncode != 0 else "SURVIVED"
    except subprocess.TimeoutExpired:
        return "TIMEOUT"
    finally:
        file.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1800.0, help="time for all mutants")
    parser.add_argument("--only", default="", help="only the mutants of paths containing this")
    args = parser.parse_args()
    deadline = time.monotonic() + args.seconds
    outcomes = []
    for mutant in [m for m in MUTANTS if args.only in m[0]]:
        if time.monotonic() > deadline:
            outcomes.append("NOT RUN")
        else:
            outcomes.append(run(mutant, deadline))
        path, old, new, _ = mutant
        print(
            f"{outcomes[-1]:<9} {path}: {old.strip().splitlines()[0][:60]!r} -> "
            f"{new.strip().splitlines()[0][:40]!r}",
            flush=True,
        )
    survived = sum(o != "KILLED" for o in outcomes)
    print(f"{len(outcomes) - survived} of {len(outcomes)} mutants killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
