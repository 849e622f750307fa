"""The learners suite honours the suite contract and reports the baselines beside the learners."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from estimators.metrics import split_stability, uplift_at_k, value_at_costs
from experiments.suites.learners import NA_NOTE, LearnersSuiteConfig, plot, run, write_results

TINY = LearnersSuiteConfig(worlds=(("uniform_k2", "uniform", 2),),
                           learners=("zero", "ate", "t", "dr"), noiseless=("t",),
                           ns=(2_000,), n_eval=2_000, budgets=(0.05, 1.0))
# Seed 0 carries the contract checks; seeds 1 and 2 (cheap once seed 0 has compiled every
# shape) give the three-seed means of the ranking-diagnostics directions.
SEEDS = (0, 1, 2)
LEARNERS = ("zero", "ate", "t", "dr", "t@noiseless")
HEAD_METRICS = ("uplift_ratio@0.1", "uplift_ratio@0.3", "rank_spearman", "rank_inversion_share",
                "rank_spearman_truth", "split_rank_corr", "split_noise_to_signal")


@pytest.fixture(scope="module")
def tiny_rows() -> pd.DataFrame:
    return pd.concat([run(TINY, seed=s, progress=False) for s in SEEDS], ignore_index=True)


def test_learners_suite_tiny_run_table_and_figures(tmp_path, tiny_rows):
    df = tiny_rows[tiny_rows.seed == 0]
    assert {"metric", "value", "learner", "n", "seed", "head", "world"} <= set(df.columns)
    assert set(df.learner) == {*LEARNERS, "oracle"}
    costs = [f"{c:g}" for c in TINY.curve_costs]
    assert set(df.metric) == {"pehe", "qini_ratio", "calibration_error", "fit_seconds",
                              "regret", "cost_ratio", *HEAD_METRICS, "uplift@0.1", "uplift@0.3",
                              *(f"value@{c}" for c in costs), *(f"ratio@{c}" for c in costs)}
    assert set(df["head"]) == {"value", "cost", "policy@0.05", "policy@1", "value_cost"}
    policy = df[df["head"].str.startswith("policy")].pivot_table(
        index=["learner", "head"], columns="metric", values="value")
    # the oracle solves the same LP on the true effects: no policy within the budget beats it
    # (LP optimality, up to the allocator's 1e-9 relative tolerance); an overspending one may
    within = policy[policy.cost_ratio <= 1.0]
    assert len(within) > 0 and (within.regret > -1e-6).all()
    value_pehe = df[(df.metric == "pehe") & (df["head"] == "value")].set_index("learner")["value"]
    # the value label is sparse and heavy-tailed: without its noise the same ridge T-learner is
    # left with its misfit (most of its PEHE here: 2.40 against 2.98 with noise)
    assert value_pehe["t@noiseless"] < value_pehe["t"]
    pehe = df[(df.metric == "pehe") & (df["head"] == "cost")].set_index("learner")["value"]
    # Incremental cost is dense: the heterogeneous learners beat both baselines by a wide margin.
    assert pehe["t"] < pehe["ate"] < pehe["zero"]
    assert pehe["dr"] < pehe["ate"]
    paths = write_results(tiny_rows, tmp_path)
    assert all(p.exists() for p in paths)
    table = (tmp_path / "learners.md").read_text()
    assert "| zero |" in table and "| ate |" in table
    assert "policy: true regret" in table and "| t@noiseless |" in table
    # the diagnostics sections; the zero baseline's undefined split stability is n/a, explained
    assert "uplift@k / the oracle's and rank monotonicity" in table
    assert "value-vs-cost curve" in table and "split stability, n = 2000" in table
    assert "| zero | n/a | n/a | n/a | n/a |" in table and NA_NOTE in table
    assert "nan" not in table.lower()
    figs = [p.name for p in paths if p.suffix == ".png"]  # write_results draws plot's figures
    assert figs == ["pehe_vs_n.png", "qini_ratio.png", "regret_vs_n.png",
                    "learners_diagnostics.png"]
    # rows stored before the diagnostics existed still plot (the report redraws stored rows)
    old = tiny_rows[~tiny_rows.metric.isin(set(tiny_rows.metric) - {
        "pehe", "qini_ratio", "calibration_error", "fit_seconds", "regret", "cost_ratio"})]
    assert len(plot(old[old.learner != "oracle"], tmp_path / "old")) == 3


def test_learners_suite_ranking_diagnostics_for_every_learner(tiny_rows):
    """Every learner and both baselines carry every diagnostic, finite except the zero
    baseline's split stability (NaN: a constant score ranks no one)."""
    for learner in LEARNERS:
        for head in ("value", "cost"):
            got = tiny_rows[(tiny_rows.learner == learner) & (tiny_rows["head"] == head)]
            for metric in HEAD_METRICS:
                values = got.loc[got.metric == metric, "value"].to_numpy()
                assert len(values) == len(SEEDS), (learner, head, metric)
                undefined = learner == "zero" and metric.startswith("split_")
                assert np.isnan(values).all() if undefined else np.isfinite(values).all()
        curve = tiny_rows[(tiny_rows.learner == learner) & (tiny_rows["head"] == "value_cost")]
        assert len(curve) == 2 * len(TINY.curve_costs) * len(SEEDS)
        assert np.isfinite(curve.value).all()


def _wide(rows: pd.DataFrame, head: str, metric: str) -> pd.DataFrame:
    """seed x learner table of one metric."""
    part = rows[(rows["head"] == head) & (rows.metric == metric)]
    return part.pivot(index="seed", columns="learner", values="value")


def test_zero_baseline_ranking_carries_no_information(tiny_rows):
    """Exact, for every seed: the zero predictor ties every user, so its uplift@k is the mean
    true gain of its offer (random targeting) at every k, and its value-vs-cost curve is 0 (no
    user has positive predicted value). Its observed rank Spearman has no sign over seeds: the
    three-seed mean lies within 3 s.e. of 0 (s.e. 0.40 / sqrt(3), the 20-seed sd 0.40)."""
    for head in ("value", "cost"):
        absolute = [_wide(tiny_rows, head, f"uplift_ratio@{k}")["zero"]
                    * _wide(tiny_rows, head, f"uplift@{k}")["oracle"] for k in (0.1, 0.3)]
        np.testing.assert_allclose(absolute[0], absolute[1], rtol=1e-9)
        rho = _wide(tiny_rows, head, "rank_spearman")["zero"]
        assert abs(rho.mean()) < 3 * 0.40 / np.sqrt(len(SEEDS))
    zero_curve = tiny_rows[(tiny_rows.learner == "zero") & (tiny_rows["head"] == "value_cost")]
    assert (zero_curve.value == 0.0).all()


# Directions of the three-seed mean of a paired difference ``a - b``, each with the 20-seed
# (seeds 0-19) sd of that difference on this config: the mean is 3.3-5 s.e. (sd / sqrt(3)) above
# 0 there, and the test asks for one s.e. to spare (P(fail) ~ 1e-3 for any three seeds).
MEAN_DIRECTIONS = [  # (head, metric, a, b, 20-seed sd of a - b)
    ("cost", "rank_spearman", "t", "ate", 0.130),  # 20-seed mean 0.29
    ("cost", "rank_spearman", "dr", "ate", 0.136),  # 0.29
    ("cost", "rank_spearman", "t", "zero", 0.391),  # 0.98
    ("cost", "rank_spearman_truth", "t", "ate", 0.130),  # 0.32
    ("value", "uplift_ratio@0.3", "t", "ate", 0.087),  # 0.26
    ("value", "uplift_ratio@0.3", "dr", "zero", 0.103),  # 0.46
    # label noise is what makes a ranking unstable: the noiseless-label fit is far more stable
    ("value", "split_rank_corr", "t@noiseless", "t", 0.220),  # 0.51
    ("cost", "split_rank_corr", "t@noiseless", "t", 0.073),  # 0.14
]


@pytest.mark.parametrize("head, metric, a, b, sd", MEAN_DIRECTIONS)
def test_ranking_diagnostics_direction_of_three_seed_means(tiny_rows, head, metric, a, b, sd):
    wide = _wide(tiny_rows, head, metric)
    assert (wide[a] - wide[b]).mean() > sd / np.sqrt(len(SEEDS))


def test_ranking_diagnostics_per_seed_margins(tiny_rows):
    """Per seed, margins of >= 4 seed-to-seed sds (20 seeds, comments): on the dense cost head
    the heterogeneous learners' top-k users carry far more true uplift than the ATE's (which
    ranks only by which offers a user may get) and their score deciles are monotone in the
    observed uplift; the T-learner's value ranking beats no ranking; both learners' value-vs-cost
    curves reach well above the zero baseline's 0."""
    for k in (0.1, 0.3):
        u = _wide(tiny_rows, "cost", f"uplift_ratio@{k}")
        # t - ate: 0.38 / 0.29 (k = 0.1 / 0.3), sd <= 0.024; ate - zero: 0.36 / 0.47, sd 0.007
        assert (u.t - u.ate > 0.2).all() and (u.dr - u.ate > 0.2).all()
        assert (u.ate - u.zero > 0.25).all()
    rho = _wide(tiny_rows, "cost", "rank_spearman")
    assert (rho[["t", "dr"]] > 0.8).all().all()  # 0.97, sd 0.02
    rho_truth = _wide(tiny_rows, "cost", "rank_spearman_truth")
    assert (rho_truth[["t", "dr"]] > 0.95).all().all()  # 1.0 in 20 of 20 seeds
    value = _wide(tiny_rows, "value", "uplift_ratio@0.3")
    assert (value.t - value.zero > 0.1).all()  # 0.52, sd 0.086
    curve = _wide(tiny_rows, "value_cost", "ratio@1")
    assert (curve[["t", "dr"]] > 0.2).all().all()  # 0.67 / 0.63, sd 0.085


def test_uplift_at_k_averages_the_boundary_block_of_ties():
    rng = np.random.default_rng(0)
    score, gain = rng.normal(size=50), rng.normal(size=50)
    for f in (0.1, 0.3, 1.0):  # no ties: the plain mean of the top k
        k = max(1, round(f * 50))
        assert uplift_at_k(score, gain, f) == pytest.approx(gain[np.argsort(-score)[:k]].mean())
    # a constant score is random targeting (row order used to decide: the first k rows)
    assert uplift_at_k(np.zeros(50), gain, 0.1) == pytest.approx(gain.mean())
    # top 2 of 4: row 0 surely, then one of the two tied rows (gains 1 and 3): 5 + 2 over 2
    assert uplift_at_k(np.array([2.0, 1.0, 1.0, 0.0]), np.array([5.0, 1.0, 3.0, 9.0]),
                       0.5) == pytest.approx(3.5)


def test_value_at_costs_crosses_a_tied_block_in_a_straight_line():
    tv = np.array([2.0, 1.0, 1.0, 0.0])  # row 3: no positive predicted value, never targeted
    tc = np.array([1.0, 1.0, 1.0, 1.0])  # rows 1 and 2 tie (ratio 1, value 1)
    gv, gc = np.array([4.0, 0.0, 2.0, 9.0]), np.array([4.0, 4.0, 0.0, 4.0])
    # per user (/4): row 0 reaches cost 1, value 1; the tied block adds cost 1 and value 0.5 in a
    # straight line (either order alone would add its cost and value in two steps)
    got = value_at_costs(tv, tc, gv, gc, (0.5, 1.0, 1.5, 2.0, 3.0))
    np.testing.assert_allclose(got, [0.5, 1.0, 1.25, 1.5, 1.5])  # 3: never reached, final value
    assert (value_at_costs(np.zeros(4), tc, gv, gc, (0.5,)) == 0).all()


def test_split_stability_is_nan_not_a_number_for_a_constant_score():
    """A constant fit used to give a RuntimeWarning and NaN rank_corr, and noise_to_signal
    mean_sd / 1e-300 (~1e299 for two different constants); both are undefined: NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = split_stability(np.stack([np.full(10, 1.0), np.full(10, 2.0)]))
        assert np.isnan(out["rank_corr"]) and np.isnan(out["noise_to_signal"])
        assert out["mean_sd"] == pytest.approx(np.sqrt(0.5)) and out["signal_sd"] == 0.0
        same = split_stability(np.zeros((2, 10)))
    assert same["mean_sd"] == 0.0 and np.isnan(same["noise_to_signal"])


def test_default_learner_is_the_library_default_heads_whatever_the_suite_head_config():
    """The suite's ``default`` learner builds exactly ``make_heads(HeadsConfig())``'s learners on
    top of the suite's own head configs (ridge alpha 100 / 1) and of a changed one, so its rows
    measure the library default."""
    from estimators.heads import HeadConfig, HeadsConfig, make_heads
    from experiments.suites.learners import _make

    want = make_heads(HeadsConfig())
    for heads in (LearnersSuiteConfig().learner,
                  HeadsConfig(value=HeadConfig(learner="dr", alpha=3.0, hurdle_amount="constant"),
                              cost=HeadConfig(base="logistic", alpha=7.0))):
        assert _make("default", heads.value, "value") == want.value
        assert _make("default", heads.cost, "cost") == want.cost


def test_learners_suite_config_validation():
    with pytest.raises(ValueError, match="unknown"):
        LearnersSuiteConfig(learners=("t", "magic"))
    with pytest.raises(ValueError, match="every n >= 500"):
        dataclasses.replace(LearnersSuiteConfig.compact(), ns=(100,))
    with pytest.raises(ValueError, match="budgets"):
        dataclasses.replace(LearnersSuiteConfig.compact(), budgets=(0.0,))
    with pytest.raises(ValueError, match="noiseless"):
        dataclasses.replace(LearnersSuiteConfig.compact(), noiseless=("zero",))


@pytest.mark.parametrize("field, value", [
    ("uplift_fractions", (0.1, 1.5)), ("uplift_fractions", ()), ("curve_costs", (0.0, 1.0)),
    ("n_rank_bins", 1), ("n_rank_bins", 41), ("stability_max_n", -1)])
def test_learners_suite_diagnostics_config_rejects_bad_values(field, value):
    # n_eval 4,000 in compact: at most 40 bins of >= 100 evaluation rows
    with pytest.raises(ValueError, match=f"LearnersSuiteConfig.{field}: .*Fix:"):
        dataclasses.replace(LearnersSuiteConfig.compact(), **{field: value})
