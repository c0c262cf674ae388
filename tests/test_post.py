"""Tests of gptnb.post beyond the inline ones of 15_post: the published losses, the re-derivation table, the post's
results table as a strip plot."""
import matplotlib
matplotlib.use("Agg")
import pytest
from matplotlib.figure import Figure

from gptnb import post, stats as S


SEEDS3 = [3.691526, 3.673453, 3.653593]


# ---- the post re-derived ------------------------------------------------------------------------------------------

def test_published_losses():
    pub = post.post_published_losses()
    table = [r for r in pub if r["source"] == "results table"]
    assert all(r["decimals"] == 3 for r in table)
    six = {r["run_name"]: r["test_loss"] for r in pub if r["decimals"] == 6}
    assert six == {"8xa100m40-baseline-2": 3.691526, "8xa100m40-baseline": 3.691526, "seed-22": 3.673453,
                   "seed-67": 3.653593, "seed-42-reseed-23": 3.681356, "seed-42-reseed-67": 3.680505,
                   "seed-23-reseed-23": 3.673943, "seed-67-reseed-23": 3.664345}
    assert post.post_loss("gpt2-small-openai", 3) == 3.5


def test_rederive_post():
    rd = post.rederive_post()
    rows = {r["figure"]: r for r in rd}
    assert len(rd) == len(post.post_stated_figures()) == 27
    assert rows["C.sd"]["recomputed"] == pytest.approx(0.0069638, abs=1e-7)
    assert "Σd²" in rows["B.var"]["note"] and "√Σd²" in rows["C.band"]["note"]
    assert "figure" in repr(rd).splitlines()[0]


def test_the_results_table_as_a_strip_plot():
    table = {r["intervention"]: r["test_loss"] for r in post.post_published_losses() if r["source"] == "results table"}
    band = S.noise_band(SEEDS3)
    fig = S.plot_noise_strip(table, band)
    assert isinstance(fig, Figure) and len(fig.axes[0].collections) == 9   # one scatter per intervention
