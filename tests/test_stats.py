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
