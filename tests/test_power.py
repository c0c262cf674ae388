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


# ---- issue 17: the contract, the betting test ---------------------------------------------------------------------

def _study(seed=17, n=5):
    rng = np.random.default_rng(seed); keys = [(s, None, None) for s in range(n)]
    shift = dict(zip(keys, rng.normal(0, 0.015, n)))
    base = {k: 3.70 + shift[k] + rng.normal(0, 0.004) for k in keys}
    arms = {"helps": {k: 3.68 + shift[k] + rng.normal(0, 0.004) for k in keys},
            "same": {k: 3.70 + shift[k] + rng.normal(0, 0.004) for k in keys},
            "unpaired": {(s, 1, None): 3.69 + rng.normal(0, 0.015) for s in range(4)}}
    return keys, base, arms


def test_compare_arms_contract():
    from scipy import stats as sps
    keys, base, arms = _study()
    df = P.compare_arms(base, arms, margin=0.01, value_range=(-0.1, 0.1))
    assert tuple(df.columns) == P.COMPARE_COLUMNS and len(df) == 3
    assert df["design"].tolist() == ["paired", "paired", "unpaired"]
    d = np.array([arms["helps"][k] - base[k] for k in keys])
    row = df.iloc[0]
    assert row.mean_diff == pytest.approx(d.mean()) and row.p_t == pytest.approx(sps.ttest_1samp(d, 0).pvalue)
    from gptnb.stats import sign_flip_test
    assert row.p_min == 1 / 16 and row.p_signflip == pytest.approx(sign_flip_test(d)[0])
    assert row.verdict == "helps" and "paired t" in row.rule and "rests on normality" in row.rule
    u = df.iloc[2]
    assert np.isnan(u.p_signflip) and "unpaired" in u.rule and u.sequential.startswith("n/a")
    assert u.p_t == pytest.approx(sps.ttest_ind([arms["unpaired"][k] for k in arms["unpaired"]], list(base.values()),
                                                equal_var=False).pvalue)
    assert set(df["verdict"]) <= {"helps", "hurts", "not shown", "equivalent"}
    assert not np.isinf(df["more_pairs"].astype(float)).any()
    assert (df["p_better_low"].fillna(0) <= df["p_better"]).all()


@pytest.mark.parametrize("kw,needle", [(dict(alpha=1.5), "1.5"), (dict(adjust="sidak"), "sidak"),
                                       (dict(value_range=(0.0, 1.0)), "lo < 0 < hi"),
                                       (dict(value_range=(-0.001, 0.001)), "outside the declared value_range"),
                                       (dict(margin=-1.0), "-1.0")])
def test_compare_arms_bad_input(kw, needle):
    _, base, arms = _study()
    with pytest.raises(ValueError) as e: P.compare_arms(base, arms, **kw)
    assert needle in str(e.value)


def test_one_sample_test_matches_scipy():
    from scipy import stats as sps
    x = [3.61, 3.60, 3.62, 3.605, 3.615, 3.63]
    for alt in ("less", "greater", "two-sided"):
        r = P.one_sample_test(x, 3.625, alternative=alt)
        assert r["p_t"] == pytest.approx(sps.ttest_1samp(x, 3.625, alternative=alt).pvalue, rel=1e-12)
        assert r["p_wilcoxon"] == pytest.approx(sps.wilcoxon(np.array(x) - 3.625, alternative=alt).pvalue)
    assert P.one_sample_test(x, 3.7)["stop"] == "stop: decided"
    with pytest.raises(ValueError, match="'less', 'greater'"): P.one_sample_test(x, 3.6, alternative="lower")


def test_betting_test_decides_and_checks_its_range():
    r = P.sequential_test(np.full(40, -0.02), value_range=(-0.05, 0.05))
    assert r.decision == "helps" and r.method.startswith("betting") and r.cs[1] < 0
    assert P.sequential_test(np.full(40, 0.02), value_range=(-0.05, 0.05)).decision == "hurts"
    with pytest.raises(ValueError, match=r"differences\[1\] = 0.2 lies outside"):
        P.sequential_test([0.01, 0.2], value_range=(-0.05, 0.05))
    skewed = np.r_[np.full(9, -0.001), 0.03]
    assert "skew" in P.sequential_test(skewed).note


@pytest.mark.slow
def test_false_decision_rates_betting_below_alpha():
    """Null differences (normal, t3, lognormal σ=1; truncated to the range and re-centred), up to 30 pairs, checked
    after every pair: the betting test errs ≤ alpha in all three; the normal-mixture's rates are reported beside it."""
    sd = 0.0085
    fdr = P.false_decision_rates(sd, (-10 * sd, 10 * sd), n_sims=2000, max_n=30, seed=3)
    print(fdr.to_string())
    assert (fdr["betting"] <= 0.05).all()
    assert fdr.set_index("shape").loc["lognormal", "normal_mixture"] > 0.05   # why the betting test exists


def test_unpaired_p_better_has_its_interval():
    """The unpaired row's P(better) carries the conservative Mann–Whitney interval, no NaN."""
    from gptnb.stats import auc_interval
    keys, base, arms = _study()
    u = P.compare_arms(base, arms).iloc[2]
    assert u.design == "unpaired" and not math.isnan(u.p_better_low) and not math.isnan(u.p_better_high)
    lo, hi = auc_interval(u.p_better, len(base), len(arms["unpaired"]))
    assert (u.p_better_low, u.p_better_high) == pytest.approx((float(lo), float(hi)))
    assert u.p_better_low <= u.p_better <= u.p_better_high


def test_legend_states_the_unadjusted_alpha_of_more_pairs():
    assert "more_pairs" in P.COMPARE_LEGEND and "unadjusted α" in P.COMPARE_LEGEND


def test_an_effect_of_rounding_noise_needs_more_than_max_n_seeds_not_a_crash():
    # a mean difference of float noise (1e-16) asks for ~1e26 seeds: a ValueError naming max_n, not scipy's TypeError
    with pytest.raises(ValueError, match="max_n=1000000"): P.seeds_needed(1e-16, 1e-3)
    with pytest.raises(ValueError, match="max_n=100"): P.seeds_needed(1e-16, 1e-3, method="normal", max_n=100)
    r = P.one_sample_test([3.281, 3.279], 3.28, alternative="less")   # what `gptnb decide --target 3.28` crashed on
    assert r["n"] == 2 and math.isnan(r["more_runs"]) and r["sequential"] == "undecided"


def test_the_pairs_to_decide_are_unknown_when_the_mean_is_rounding_noise():
    from gptnb.cli import pairs_to_decide
    assert pairs_to_decide([0.001, -0.001 + 1e-17], 0.05) is None
