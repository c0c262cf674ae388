"""Tests of gptnb.stats beyond the inline ones of 10_stats: closed forms at other levels, brute force, scipy,
property sweeps, records on disk, plots, more bad input."""
import json
import math

import matplotlib
matplotlib.use("Agg")
import numpy as np
import pytest
from matplotlib.figure import Figure

from gptnb import stats as S
from gptnb.records import read_metrics, read_records

SEEDS3 = [3.691526, 3.673453, 3.653593]


def rec(name, loss, init=42, train=None, data=None, intervention="baseline", status="complete"):
    return dict(run_name=name, status=status, preset="tiny", intervention=intervention, init_seed=init,
                train_seed=train, data_seed=data, test_loss=loss)


# ---- the post's three init seeds --------------------------------------------------------------------------------

def test_post_three_seeds_to_stated_precision():
    s = S.summarize(SEEDS3)
    assert round(math.sqrt(0.000240), 7) == 0.0154919   # the post's SD is √ of its rounded variance
    assert "n=3" in repr(s) and "mean=3.672857" in repr(s)


# ---- intervals against closed forms (2 degrees of freedom) -------------------------------------------------------

def t2(p): return (2 * p - 1) / math.sqrt(2 * p * (1 - p))      # Student t quantile, 2 df
def chi2_2(p): return -2 * math.log(1 - p)                      # chi-square quantile, 2 df


@pytest.mark.parametrize("level", [0.5, 0.8, 0.9, 0.99])
def test_mean_and_sd_ci_match_closed_forms(level):
    x = np.array(SEEDS3); s = x.std(ddof=1); m = x.mean()
    half = t2((1 + level) / 2) * s / math.sqrt(3)
    assert S.mean_ci(SEEDS3, level) == pytest.approx((m - half, m + half), abs=1e-12)
    lo, hi = S.sd_ci(SEEDS3, level)
    assert lo == pytest.approx(s * math.sqrt(2 / chi2_2((1 + level) / 2)), rel=1e-10)
    assert hi == pytest.approx(s * math.sqrt(2 / chi2_2((1 - level) / 2)), rel=1e-10)


def test_one_factor_init_interval_by_hand():
    a, b = [3.681356, 3.673943, 3.664345], [3.691526, 3.681356, 3.680505]
    sp = S.one_factor_split(a, b)
    assert sp["init"].ci == pytest.approx((2 * sp["init"].var / chi2_2(0.975), 2 * sp["init"].var / chi2_2(0.025)))


def test_welch_against_scipy():
    from scipy import stats as sps
    rng = np.random.default_rng(0); a, b = rng.normal(0, 1, 7), rng.normal(0.5, 2, 11)
    ref = sps.ttest_ind(a, b, equal_var=False)
    w = S.welch_test(a, b)
    assert w.t == pytest.approx(ref.statistic) and w.p == pytest.approx(ref.pvalue)


# ---- the sign-flip permutation test -------------------------------------------------------------------------------

@pytest.mark.parametrize("d,p", [([1., -1.], 1.0), ([0.5, 0.5, 0.5, -0.5, 0.5], 12 / 32)])
def test_sign_flip_exact_hand_examples(d, p):
    got, how = S.sign_flip_test(d)
    assert got == pytest.approx(p, abs=1e-15) and how.startswith("exact")


def test_sign_flip_exact_matches_brute_force():
    import itertools
    d = np.array([0.013, -0.004, 0.021, 0.002, 0.009, -0.011, 0.017])
    obs = abs(d.sum())
    sums = [abs(np.dot(s, d)) for s in itertools.product((1, -1), repeat=len(d))]
    assert S.sign_flip_test(d)[0] == sum(s >= obs - 1e-12 for s in sums) / 2 ** len(d)


def test_sign_flip_exact_up_to_20_then_monte_carlo():
    d = np.linspace(0.01, 0.2, 20)
    p, how = S.sign_flip_test(d)
    assert how == "exact (1048576 sign patterns)" and p == 2 / 2 ** 20
    d21 = np.linspace(-0.1, 0.2, 21)
    p1, how1 = S.sign_flip_test(d21, n_resamples=5000, seed=3)
    assert how1.startswith("monte-carlo") and (p1, how1) == S.sign_flip_test(d21, n_resamples=5000, seed=3)
    exact = S.sign_flip_test(d21, exact_max_n=21)[0]
    assert abs(p1 - exact) < 4 * math.sqrt(exact * (1 - exact) / 5000) + 1e-3


def test_paired_by_seeds_and_errors():
    base = [rec(f"b{i}", 3.70 + 0.01 * i, init=i, train=1) for i in range(5)]
    treat = [rec(f"t{i}", 3.69 + 0.01 * i + 0.001 * (-1) ** i, init=i, train=1, intervention="x") for i in range(5)]
    pr = S.paired_test(base, list(reversed(treat)))          # order does not matter: pairing is by seeds
    d = np.array([0.01 - 0.001 * (-1) ** i for i in range(5)])
    assert pr.mean_diff == pytest.approx(d.mean()) and pr.p == 2 / 32 and pr.method.startswith("exact")
    half = S.sps.t.ppf(0.975, 4) * d.std(ddof=1) / math.sqrt(5)
    assert pr.ci == pytest.approx((d.mean() - half, d.mean() + half))
    with pytest.raises(ValueError, match=r"\(4, 1, None\)"):
        S.paired_test(base, treat[:4])
    with pytest.raises(ValueError, match="share"):
        S.paired_test(base + [rec("dup", 3.7, init=0, train=1)], treat)
    with pytest.raises(ValueError, match="no baseline and treated runs share seeds"):
        S.paired_test(base, [rec("z", 3.7, init=99, train=1)], drop_unpaired=True)
    assert S.paired_test(base, treat[:4], drop_unpaired=True).n == 4
    pairs = S.pair_by_seeds([dict(r, initial_weights_sha256="w") for r in base],
                            [dict(r, initial_weights_sha256="w" if i < 3 else "v") for i, r in enumerate(treat)])
    assert [k for k, _, _ in pairs] == [(i, 1, None) for i in range(5)]
    assert S.same_initial_weights(pairs) == (True, True, True, False, False)


# ---- power and seeds needed ---------------------------------------------------------------------------------------

def test_power_known_values():
    assert S.power_of(1e-9, 10, 1.0) == pytest.approx(0.05, abs=1e-6)      # no effect: power = alpha


@pytest.mark.parametrize("design", ["two-sample", "paired"])
@pytest.mark.parametrize("alpha,power", [(0.05, 0.8), (0.01, 0.9), (0.1, 0.5)])
def test_power_and_sample_size_invert(design, alpha, power):
    sd = 0.0155
    for n in (2, 3, 4, 8, 20, 60):
        e = S.detectable_effect(n, sd, alpha, power, design)
        assert S.power_of(e, n, sd, alpha, design) == pytest.approx(power, abs=1e-9)
        assert S.seeds_needed(e * (1 + 1e-9), sd, alpha, power, design) == n
        assert S.detectable_effect(n, sd, alpha, power, design, method="normal") < e   # the normal approx is optimistic
    for eff in (0.002, 0.005, 0.014, 0.03, 0.09):
        n = S.seeds_needed(eff, sd, alpha, power, design)
        assert S.detectable_effect(n, sd, alpha, power, design) <= eff
        if n > 2: assert S.detectable_effect(n - 1, sd, alpha, power, design) > eff
        nn = S.seeds_needed(eff, sd, alpha, power, design, method="normal")
        if nn > 2: assert S.detectable_effect(nn - 1, sd, alpha, power, design, method="normal") > eff


# ---- variance components ------------------------------------------------------------------------------------------

def test_crossed_additive_grid_with_replicates():
    a, b, e = np.array([0., 0.03, -0.01]), np.array([0.002, -0.004, 0.0, 0.001]), 0.001
    y = 3.6 + a[:, None, None] + b[None, :, None] + np.array([e, -e])[None, None, :]
    sp = S.crossed_split(y)
    assert sp["init"].var == pytest.approx(np.var(a, ddof=1), rel=1e-9)
    assert sp["train"].var == pytest.approx(np.var(b, ddof=1), rel=1e-9)
    assert sp["residual"].var == pytest.approx(2 * e * e, rel=1e-9)
    assert sp["interaction"].clipped and sp["interaction"].var == 0 and "clipped" in sp.note


def test_crossed_recovers_simulated_components():
    rng = np.random.default_rng(11)
    y = 3.67 + rng.normal(0, 0.015, (40, 1)) + rng.normal(0, 0.004, (1, 40)) + rng.normal(0, 0.002, (40, 40))
    sp = S.crossed_split(y)
    assert sp["init"].sd == pytest.approx(0.015, rel=0.3) and sp["train"].sd == pytest.approx(0.004, rel=0.3)
    assert sp["residual"].sd == pytest.approx(0.002, rel=0.1)
    for c in sp.components: assert c.ci[0] <= c.var <= c.ci[1]
    records = [rec(f"{i}/{j}", y[i, j], init=i, train=j) for i in range(40) for j in range(40)]
    assert S.crossed_split(records).ratio == pytest.approx(sp.ratio, rel=1e-12)


def test_one_factor_design_checks():
    with pytest.raises(ValueError, match=r"init_seed must be held fixed, found \[1, 2\]"):
        S.one_factor_split([3.7, 3.71], [rec("a", 3.7, 1, 5), rec("b", 3.71, 2, 6)])
    with pytest.raises(ValueError, match="incomplete"):
        S.seed_grid([rec("a", 3.7, 1, 1), rec("b", 3.7, 1, 2), rec("c", 3.7, 2, 1)])


# ---- bad input ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call,needle", [
    (lambda: S.summarize([3.69, float("inf")]), "inf"),
    (lambda: S.summarize([3.69, "3.7"]), "'3.7'"),
    (lambda: S.summarize(SEEDS3, level=1.0), "1.0"),
    (lambda: S.summarize(SEEDS3, level=-0.5), "-0.5"),
    (lambda: S.mean_ci(SEEDS3, level=95), "95"),
    (lambda: S.sd_ci([3.7], 0.9), "[3.7]"),
    (lambda: S.noise_band([3.7]), "[3.7]"),
    (lambda: S.noise_band(SEEDS3, k=0), "0"),
    (lambda: S.welch_test([3.7], SEEDS3), "[3.7]"),
    (lambda: S.paired_test([3.7], [3.6]), "[0.1"),
    (lambda: S.detectable_effect(3, 0.01, power=1.2), "1.2"),
    (lambda: S.seeds_needed(-0.01, 0.01), "-0.01"),
    (lambda: S.power_of(0.01, 2.5, 0.01), "2.5"),
    (lambda: S.summarize([rec("r9", None, status="failed")]), "'r9'"),
])
def test_bad_input_names_the_value(call, needle):
    with pytest.raises(ValueError) as e: call()
    assert needle in str(e.value)


# ---- records and metrics ------------------------------------------------------------------------------------------

def test_load_records_and_metrics(tmp_path):
    for i, status in enumerate(("complete", "complete", "diverged")):
        d = tmp_path / f"run{i}"; d.mkdir()
        (d / "record.json").write_text(json.dumps(rec(f"run{i}", 3.7 + i / 100 if status == "complete" else None,
                                                      init=i, status=status)))
        (d / "metrics.jsonl").write_text("\n".join(
            [json.dumps(dict(step=s, tokens=s * 10, loss=5 - s / 10, lr=1e-3, grad_norm=1.)) for s in range(5)]
            + [json.dumps(dict(step=4, val_loss=4.7)), ""]))
    recs = read_records(tmp_path)
    assert len(recs) == 3 and len(S.complete_runs(recs)) == 2
    assert S.summarize(S.complete_runs(recs)).mean == pytest.approx(3.705)
    m = read_metrics(tmp_path / "run0")
    assert list(m["loss"]) == [5, 4.9, 4.8, 4.7, 4.6] and list(m["val_loss"]) == [4.7]
    (tmp_path / "run0" / "metrics.jsonl").write_text('{"step": 1, "loss": 3}\n{oops\n{"step": 2, "loss": 2}\n')
    with pytest.raises(ValueError, match=":2"): read_metrics(tmp_path / "run0")
    fig = S.plot_loss_curves([tmp_path / "run1", tmp_path / "run2"])
    assert isinstance(fig, Figure) and len(fig.axes[0].lines) == 4


# ---- the post re-derived ------------------------------------------------------------------------------------------

def test_published_losses():
    pub = S.post_published_losses()
    table = [r for r in pub if r["source"] == "results table"]
    assert all(r["decimals"] == 3 for r in table)
    six = {r["run_name"]: r["test_loss"] for r in pub if r["decimals"] == 6}
    assert six == {"8xa100m40-baseline-2": 3.691526, "8xa100m40-baseline": 3.691526, "seed-22": 3.673453,
                   "seed-67": 3.653593, "seed-42-reseed-23": 3.681356, "seed-42-reseed-67": 3.680505,
                   "seed-23-reseed-23": 3.673943, "seed-67-reseed-23": 3.664345}
    assert S.post_loss("gpt2-small-openai", 3) == 3.5


def test_rederive_post():
    rd = S.rederive_post()
    rows = {r["figure"]: r for r in rd}
    assert len(rd) == len(S.post_stated_figures()) == 27
    assert rows["C.sd"]["recomputed"] == pytest.approx(0.0069638, abs=1e-7)
    assert "Σd²" in rows["B.var"]["note"] and "√Σd²" in rows["C.band"]["note"]
    assert "figure" in repr(rd).splitlines()[0]


def test_plots_return_figures():
    table = {r["intervention"]: r["test_loss"] for r in S.post_published_losses() if r["source"] == "results table"}
    band = S.noise_band(SEEDS3)
    fig = S.plot_noise_strip(table, band)
    assert isinstance(fig, Figure) and len(fig.axes[0].collections) == 9   # one scatter per intervention
    assert isinstance(S.plot_variance_split(S.crossed_split([[1., 2.], [2., 1.]])), Figure)   # clipped component
    import matplotlib.pyplot as plt
    fig2, ax = plt.subplots(); assert S.plot_variance_split(S.one_factor_split(SEEDS3, SEEDS3[::-1] + [3.7]), ax=ax) is fig2
    plt.close(fig2)


# ---- issue 11: prediction intervals ------------------------------------------------------------------------------

def test_prediction_interval_at_n5_is_the_t_formula():
    from scipy import stats as sps
    x = np.array([6.61, 6.59, 6.68, 6.60, 6.63])
    half = sps.t.ppf(1 - 0.05 / 2, 4) * x.std(ddof=1) * math.sqrt(1 + 1 / 5)
    assert S.prediction_interval(x) == (x.mean() - half, x.mean() + half)
    lo, hi = S.prediction_interval(x, coverage=0.8)
    assert hi - x.mean() == pytest.approx(sps.t.ppf(0.9, 4) * x.std(ddof=1) * math.sqrt(1.2), rel=1e-12)


@pytest.mark.parametrize("n,ddof", [(3, 0), (3, 1), (5, 1)])
def test_band_coverage_by_monte_carlo(n, ddof):
    rng = np.random.default_rng(n + ddof)
    runs, new = rng.normal(0, 1, (200_000, n)), rng.normal(0, 1, 200_000)
    inside = np.abs(new - runs.mean(1)) <= 3 * runs.std(1, ddof=ddof)
    assert inside.mean() == pytest.approx(S.band_coverage(3, n, ddof), abs=4 * math.sqrt(0.25 / 200_000))


# ---- multiple testing -------------------------------------------------------------------------------------------

def test_adjust_pvalues_against_statsmodels_and_by_hand():
    from statsmodels.stats.multitest import multipletests
    p = np.random.default_rng(4).uniform(0, 0.2, 15)
    assert S.adjust_pvalues(p, "holm") == pytest.approx(multipletests(p, method="holm")[1], abs=1e-15)
    assert S.adjust_pvalues(list(p), "bh") == pytest.approx(multipletests(p, method="fdr_bh")[1], abs=1e-15)
    order, m = np.argsort(p), len(p)
    holm = np.minimum(1, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    assert S.adjust_pvalues(p)[order] == pytest.approx(holm, abs=1e-15)


def test_pvalue_verdicts_use_scipy_tests():
    from scipy import stats as sps
    rng = np.random.default_rng(9); base = 6.6 + rng.normal(0, 0.01, 6)
    arms = {"a": base - 0.02 + rng.normal(0, 0.002, 6), "b": base + rng.normal(0, 0.002, 6)}
    df = S.pvalue_verdicts(base, arms)
    assert list(df["p_raw"]) == pytest.approx([sps.ttest_rel(base, arms[k]).pvalue for k in "ab"], rel=1e-10)
    assert df["verdict"].tolist()[0] == "better" and "holm" in df["rule"][0]
    w = S.pvalue_verdicts(base, arms, test="welch", adjust="bh")
    assert list(w["p_raw"]) == pytest.approx([sps.ttest_ind(base, arms[k], equal_var=False).pvalue for k in "ab"])


# ---- multi-bootstrap ----------------------------------------------------------------------------------------------

def test_multi_bootstrap_without_sequence_noise_is_the_seed_bootstrap():
    rng = np.random.default_rng(1)
    b, t = 6.6 + rng.normal(0, 0.01, (5, 1)), 6.59 + rng.normal(0, 0.01, (5, 1))
    wide = S.multi_bootstrap(np.repeat(b, 64, 1), np.repeat(t, 64, 1), seed=3)
    narrow = S.multi_bootstrap(b, t, seed=3)
    assert wide.samples == pytest.approx(narrow.samples, abs=1e-12) and wide.ci == pytest.approx(narrow.ci, abs=1e-12)
    # a seed-only bootstrap by hand, with the same row draws
    rows = np.random.default_rng(3).integers(0, 5, (2000, 5))
    assert narrow.samples == pytest.approx((t - b)[rows, 0].mean(1), abs=1e-12)


def test_multi_bootstrap_covers_a_known_effect_that_varies_by_sequence():
    # the effect differs between test sequences (SD 0.02): only resampling the sequences sees that uncertainty
    rng = np.random.default_rng(0); hits_multi = hits_seed = 0; sims = 150
    for _ in range(sims):
        diff = -0.01 + rng.normal(0, 0.02, 40)[None, :] + rng.normal(0, 0.002, (10, 1)) + rng.normal(0, 0.005, (10, 40))
        b = 6.6 + rng.normal(0, 0.3, 40)[None, :] + rng.normal(0, 0.01, (10, 40))
        multi = S.multi_bootstrap(b, b + diff, n_boot=400, seed=int(rng.integers(1 << 30)))
        seed_only = S.multi_bootstrap(b.mean(1, keepdims=True), (b + diff).mean(1, keepdims=True), n_boot=400)
        hits_multi += multi.ci[0] <= -0.01 <= multi.ci[1]; hits_seed += seed_only.ci[0] <= -0.01 <= seed_only.ci[1]
    assert 0.85 <= hits_multi / sims <= 1.0 and hits_seed / sims < 0.6


# ---- P(A > B) -----------------------------------------------------------------------------------------------------

def test_prob_superiority_unpaired_is_mann_whitney():
    from scipy import stats as sps
    rng = np.random.default_rng(2); b, t = rng.normal(6.60, 0.01, 7), rng.normal(6.59, 0.01, 5)
    t[0] = b[0]   # a tie counts one half
    r = S.prob_superiority(b, t, paired=False)
    assert r.p == pytest.approx(sps.mannwhitneyu(b, t).statistic / 35, abs=1e-15) and r.ci[0] <= r.p <= r.ci[1]
    assert S.prob_superiority(b[:5], t).p == pytest.approx(np.mean((b[:5] > t) + 0.5 * (b[:5] == t)))


# ---- variance components: MLS and REML ----------------------------------------------------------------------------

def test_mls_intervals_of_the_crossed_design_cover_near_nominal():
    rng = np.random.default_rng(6); hits = {"init": 0, "train": 0}; sims = 300
    for _ in range(sims):
        y = rng.normal(0, 0.01, (4, 1, 1)) + rng.normal(0, 0.004, (1, 4, 1)) + rng.normal(0, 0.003, (4, 4, 2))
        sp = S.crossed_split(y)
        for name, var in (("init", 1e-4), ("train", 1.6e-5)): hits[name] += sp[name].ci[0] <= var <= sp[name].ci[1]
    for name in hits: assert 0.9 <= hits[name] / sims <= 0.99


def test_reml_matches_anova_on_balanced_grids():
    rng = np.random.default_rng(3)
    y = 3.6 + rng.normal(0, 1, (4, 1, 1)) + rng.normal(0, 0.5, (1, 4, 1)) + rng.normal(0, 0.3, (4, 4, 1)) \
        + rng.normal(0, 0.2, (4, 4, 3))
    sp, reml = S.crossed_split(y), S.reml_components(y, interaction=True)
    assert not any(c.clipped for c in sp.components)
    for c in sp.components: assert reml[c.name] == pytest.approx(c.var, rel=1e-3)


def test_crossed3_recovers_main_effects():
    rng = np.random.default_rng(8)
    y = rng.normal(0, 0.04, (12, 1, 1)) + rng.normal(0, 0.01, (1, 12, 1)) + rng.normal(0, 0.02, (1, 1, 12)) \
        + rng.normal(0, 0.005, (12, 12, 12))
    sp = S.crossed3_split(y)
    for name, sd in (("init", 0.04), ("train", 0.01), ("data", 0.02), ("residual", 0.005)):
        assert sp[name].sd == pytest.approx(sd, rel=0.5) and sp[name].ci[0] <= sp[name].var <= sp[name].ci[1]


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
    ts = float(S.cs_threshold(n, alpha=1 / closed))
    assert ts == pytest.approx(abs(t), rel=1e-9)


def test_first_decisions_match_sequential_test_and_keep_alpha():
    d = np.random.default_rng(5).normal(0.003, 0.0075, (40, 30))
    codes, used = S.first_decisions(d, margin=0.004)
    for row, code, n in zip(d, codes, used):
        r = S.sequential_test(row[:n], margin=0.004)
        assert r.decision == S.DECISIONS[code] and (r.decision != "undecided" or n == 30)
        if n > 5: assert S.sequential_test(row[:n - 1], margin=0.004).decision == "undecided"
    null = S.simulate_sequential(0.0, 0.01, n_sims=5000, max_n=60, seed=2)
    assert null["rates"]["helps"] + null["rates"]["hurts"] <= 0.05


# ---- noise along the curve ----------------------------------------------------------------------------------------

def test_curve_noise_from_records(tmp_path):
    for i, shift in enumerate((0.0, 0.02, -0.01)):
        d = tmp_path / f"run{i}"; d.mkdir()
        (d / "record.json").write_text(json.dumps(rec(f"run{i}", 3.7, init=i)))
        (d / "metrics.jsonl").write_text("\n".join(json.dumps(dict(step=s, val_loss=5 - s / 100 + shift * s / 10))
                                                   for s in (9, 19)) + "\n")
    tab = S.curve_noise(read_records(tmp_path))
    assert tab.index.tolist() == [9, 19] and tab["n"].tolist() == [3, 3]
    assert tab["sd"].tolist() == pytest.approx([np.std([0, 0.018, -0.009], ddof=1), np.std([0, 0.038, -0.019], ddof=1)])
    assert isinstance(S.plot_curve_noise(tab), Figure)


@pytest.mark.parametrize("call,needle", [
    (lambda: S.prediction_interval([3.7]), "[3.7]"),
    (lambda: S.k_for_coverage(1.0, 3), "1.0"),
    (lambda: S.adjust_pvalues([0.1, float("nan")]), "nan"),
    (lambda: S.adjust_pvalues([0.1], method="fdr"), "'holm', 'bh'"),
    (lambda: S.multi_bootstrap(np.ones((3, 4)), np.ones((2, 4))), "(2, 4)"),
    (lambda: S.multi_bootstrap(np.ones((3, 4)), np.ones((3, 4)), n_boot=1), "n_boot"),
    (lambda: S.prob_superiority([1., 2.], [1.], paired=True), "equal lengths"),
    (lambda: S.crossed3_split(np.ones((2, 2))), "(2, 2)"),
    (lambda: S.sequential_test([0.1, 0.2], alpha=0), "0"),
    (lambda: S.simulate_sequential(0.0, -1.0), "-1.0"),
])
def test_issue11_bad_input_names_the_value(call, needle):
    with pytest.raises(ValueError) as e: call()
    assert needle in str(e.value)
