"""Tests of gptnb.stats beyond the inline ones of 12_stats: closed forms at other levels, brute force, scipy,
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


def test_welch_against_scipy():
    from scipy import stats as sps
    rng = np.random.default_rng(0); a, b = rng.normal(0, 1, 7), rng.normal(0.5, 2, 11)
    ref = sps.ttest_ind(b, a, equal_var=False)   # Δ = treated − baseline
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
    d = -np.array([0.01 - 0.001 * (-1) ** i for i in range(5)])   # Δ = treated − baseline: negative helps
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
    (lambda: S.paired_test([3.7], [3.6]), "[-0.1"),
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
    assert df["verdict"].tolist()[0] == "helps" and "holm" in df["rule"][0] and df["mean_diff"][0] < 0
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
])
def test_issue11_bad_input_names_the_value(call, needle):
    with pytest.raises(ValueError) as e: call()
    assert needle in str(e.value)


# ---- issue 17: intervals that claim what they cover ---------------------------------------------------------------

def test_coverage_table_every_printed_interval_covers_or_warns():
    """Every interval gptnb prints covers ≥ 93% at n = 5 in every simulated cell, or its printed output says it does
    not (2,000 experiments per cell, nominal 95%; tolerance: 93%)."""
    cov = S.interval_coverage(n_sims=2000, ns=(3, 5, 10), seed=1)
    assert set(cov["interval"]) == set(S.COVERAGE_HOLDS_FROM) and (cov["n_sims"] == 2000).all()
    holds = S.coverage_holds_from(cov)
    assert holds == {k: S.COVERAGE_HOLDS_FROM[k] for k in holds}
    for name in S.COVERAGE_HOLDS_FROM:
        worst = cov.query("interval == @name and n == 5")["coverage"].min()
        assert worst >= 0.93 or S.coverage_note(name, 5), name
    # the corrections: exact P(A>B) and the t multi-bootstrap hold where their predecessors failed (normal noise)
    at5 = cov.query("n == 5 and shape == 'normal'").groupby("interval")["coverage"].min()
    assert at5["P(A>B) Clopper-Pearson"] >= 0.93 and at5["P(A>B) paired bootstrap (before)"] < 0.9
    assert at5["multi-bootstrap t"] >= 0.93 and at5["multi-bootstrap percentile"] < 0.9


def test_printed_results_carry_their_coverage_warning():
    rng = np.random.default_rng(4); b, t = 6.6 + rng.normal(0, 0.01, (5, 8)), 6.6 + rng.normal(0, 0.01, (5, 8))
    assert "caution: multi-bootstrap t" in repr(S.multi_bootstrap(b, t, n_boot=50))
    assert "caution: t (this test set)" in repr(S.paired_test(list(b[:, 0]), list(t[:, 0])))
    assert "caution: SD chi-square" in repr(S.summarize(SEEDS3))
    assert "caution" not in repr(S.prob_superiority(list(b[:, 0]), list(t[:, 0])))


def test_clopper_pearson_replaces_the_degenerate_bootstrap():
    r = S.prob_superiority([3.7] * 5, [3.6] * 5)          # 5 wins of 5 pairs
    assert r.p == 1 and r.ci == pytest.approx((0.478176, 1.0), abs=1e-6) and r.interval == "clopper-pearson"
    r = S.prob_superiority([3.7] * 5, [3.6, 3.8, 3.8, 3.8, 3.8])   # 1 win of 5
    assert r.ci == pytest.approx((0.005051, 0.716417), abs=1e-6)


def test_one_sign_convention():
    """Δ = arm − baseline everywhere: negative helps."""
    base, arm = [3.70, 3.71, 3.69, 3.72, 3.70], [3.68, 3.70, 3.67, 3.70, 3.69]
    assert S.paired_test(base, arm).mean_diff < 0 and S.welch_test(base, arm).diff < 0
    mb = S.multi_bootstrap(np.array(base)[:, None], np.array(arm)[:, None], n_boot=100)
    assert mb.estimate < 0
    df = S.pvalue_verdicts(base, {"a": arm})
    assert df["mean_diff"][0] < 0 and df["verdict"][0] in ("helps", "not shown")
    assert S.verdicts({"baseline": 3.7, "a": 3.6}, S.NoiseBand(3.7, 0.01))[1]["verdict"] == "helps"


@pytest.mark.parametrize("p,digits,text", [(0.0, 6, "< 1e-6"), (3e-9, 4, "< 1e-4"), (0.0625, 4, "0.0625"),
                                           (float("nan"), 4, "—"), (1.0, 2, "1.00")])
def test_format_p_prints_bounds(p, digits, text):
    assert S.format_p(p, digits) == text


# ---- intervals checked by simulation at the sample sizes users have ----------------------------------------------

def test_auc_interval_covers_at_five_runs_per_arm():
    """The unpaired P(arm better) interval holds its 95% at 5 runs per arm (2,000 simulated pairs of arms, normal
    noise, true P ≈ 0.64); it is conservative, so coverage is at or above nominal within Monte-Carlo error."""
    rng, n, sims = np.random.default_rng(7), 5, 2000
    a, b = -0.5 + rng.standard_normal((sims, n)), rng.standard_normal((sims, n))
    share = (a[:, None, :] < b[:, :, None]).mean((1, 2))
    from scipy import stats as sps
    truth = sps.norm.cdf(0.5 / math.sqrt(2))
    lo, hi = S.auc_interval(share, n, n)
    assert np.mean((lo <= truth) & (truth <= hi)) >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / sims)
    assert np.all(lo <= share) and np.all(share <= hi)


def test_auc_interval_is_clopper_pearson_on_the_smaller_arm():
    assert S.auc_interval(1.0, 5, 8) == pytest.approx(S.clopper_pearson(5, 0, 5), abs=1e-12)
    assert S.auc_interval(0.0, 3, 3) == pytest.approx(S.clopper_pearson(0, 0, 3), abs=1e-12)
    with pytest.raises(ValueError, match="1.5"): S.auc_interval(1.5, 3, 3)


def test_unpaired_prob_superiority_uses_the_auc_interval():
    b, t = [3.70, 3.71, 3.69, 3.72, 3.70], [3.68, 3.70, 3.67, 3.73, 3.69, 3.66]
    r = S.prob_superiority(b, t, paired=False)
    assert r.interval == "clopper-pearson on min(m, n)" and r.n == (5, 6)
    assert r.ci == pytest.approx(tuple(float(v) for v in S.auc_interval(r.p, 5, 6)), abs=1e-12)
    assert "caution" not in repr(r)


def test_curve_sd_interval_covers_at_five_runs_under_normal_noise_only():
    cov = S.sd_curve_coverage(ns=(5,), n_sims=4000, checks=4, seed=3).set_index("shape")
    se = math.sqrt(0.95 * 0.05 / 4000)
    assert abs(cov.loc["normal", "one_check"] - 0.95) < 3 * se       # exact for normal losses
    assert cov.loc["lognormal", "one_check"] < 0.93 and cov.loc["t3", "one_check"] < 0.93
    assert (cov["all_checks"] <= cov["one_check"]).all()


def test_curve_noise_states_its_assumptions():
    curves = [dict(val_step=[10, 20], val_loss=[4.0 + e, 3.5 + e]) for e in (0.01, -0.02, 0.03)]
    tab = S.curve_noise(curves)
    note = tab.attrs["note"]
    assert "normal seed losses" in note and "one step at a time" in note and "caution: SD chi-square" in note
    lo, hi = S.chi2_sd_interval(tab["sd"].iloc[0], 2)
    assert (tab["sd_low"].iloc[0], tab["sd_high"].iloc[0]) == pytest.approx((lo, hi))
