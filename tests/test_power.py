"""Tests of gptnb.power beyond the inline ones of 14_power: power and seed counts inverted over a grid of levels,
the confidence sequence's bound against its Bayes factor by integration, the stopping rule in bulk, bad input."""
import math

import numpy as np
import pytest

from gptnb import power as P


# ---- power and seeds needed ---------------------------------------------------------------------------------------

def test_power_known_values():
    assert P.power_of(1e-9, 10, 1.0) == pytest.approx(0.05, abs=1e-6)      # no effect: power = alpha


@pytest.mark.parametrize("design", ["two-sample", "paired"])
@pytest.mark.parametrize("alpha,power", [(0.05, 0.8), (0.01, 0.9), (0.1, 0.5)])
def test_power_and_sample_size_invert(design, alpha, power):
    sd = 0.0155
    for n in (2, 3, 4, 8, 20, 60):
        e = P.detectable_effect(n, sd, alpha, power, design)
        assert P.power_of(e, n, sd, alpha, design) == pytest.approx(power, abs=1e-9)
        assert P.seeds_needed(e * (1 + 1e-9), sd, alpha, power, design) == n
        assert P.detectable_effect(n, sd, alpha, power, design, method="normal") < e   # the normal approx is optimistic
    for eff in (0.002, 0.005, 0.014, 0.03, 0.09):
        n = P.seeds_needed(eff, sd, alpha, power, design)
        assert P.detectable_effect(n, sd, alpha, power, design) <= eff
        if n > 2: assert P.detectable_effect(n - 1, sd, alpha, power, design) > eff
        nn = P.seeds_needed(eff, sd, alpha, power, design, method="normal")
        if nn > 2: assert P.detectable_effect(nn - 1, sd, alpha, power, design, method="normal") > eff


# ---- the sequential test ------------------------------------------------------------------------------------------

def test_confidence_sequence_bound_is_the_bayes_factor_by_integration():
    from scipy import integrate, stats as sps
    d = np.array([0.3, -0.1, 0.5, 0.2, 0.4, 0.1]); n = len(d)
    def marginal(delta_sd):   # ∫∫ Π N(dᵢ; δσ, σ²) N(δ; 0, g) dδ dσ/σ, the δ integral in closed form
        def f(sigma):
            cov = sigma ** 2 * (np.eye(n) + delta_sd ** 2 * np.ones((n, n)))
            return sps.multivariate_normal(np.zeros(n), cov).pdf(d) / sigma
        return integrate.quad(f, 1e-3, 20, limit=200)[0]
    bf = marginal(1.0) / marginal(0.0)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(n)); nu = n - 1
    closed = (1 + n) ** -0.5 * ((1 + t * t / nu) / (1 + t * t / (nu * (1 + n)))) ** (n / 2)
    assert bf == pytest.approx(closed, rel=1e-5)
    # the threshold is where that Bayes factor reaches 1/α
    ts = float(P.cs_threshold(n, alpha=1 / closed))
    assert ts == pytest.approx(abs(t), rel=1e-9)


def test_first_decisions_match_sequential_test_and_keep_alpha():
    d = np.random.default_rng(5).normal(0.003, 0.0075, (40, 30))
    codes, used = P.first_decisions(d, margin=0.004)
    for row, code, n in zip(d, codes, used):
        r = P.sequential_test(row[:n], margin=0.004)
        assert r.decision == P.DECISIONS[code] and (r.decision != "undecided" or n == 30)
        if n > 5: assert P.sequential_test(row[:n - 1], margin=0.004).decision == "undecided"
    null = P.simulate_sequential(0.0, 0.01, n_sims=5000, max_n=60, seed=2)
    assert null["rates"]["helps"] + null["rates"]["hurts"] <= 0.05


@pytest.mark.parametrize("call,needle", [
    (lambda: P.detectable_effect(3, 0.01, power=1.2), "1.2"),
    (lambda: P.seeds_needed(-0.01, 0.01), "-0.01"),
    (lambda: P.power_of(0.01, 2.5, 0.01), "2.5"),
    (lambda: P.sequential_test([0.1, 0.2], alpha=0), "0"),
    (lambda: P.simulate_sequential(0.0, -1.0), "-1.0"),
])
def test_bad_input_names_the_value(call, needle):
    with pytest.raises(ValueError) as e: call()
    assert needle in str(e.value)
