"""The lessons suite: campaign-level allocation loses true value against user-action allocation,
and forcing an offer leaks budget into users whose best action is nothing; each direction
asserted on paired seed differences against their seed-to-seed standard error."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from estimators.heads import ONE_NET_HEADS
from experiments.suites import lessons

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def lesson_rows():
    cfg = dataclasses.replace(lessons.LessonsSuiteConfig.compact(), n_train=4000, n_eval=2000,
                              campaign_budgets=(0.4,), forced_budgets=(0.4, 8.0),
                              learner=ONE_NET_HEADS)  # one net: the lessons, not the ensemble
    return lessons.SUITE.rows(cfg, seeds=list(SEEDS), progress=False)


def _paired(df, section, metric, a, b, level):
    """Per-seed ``a - b`` of a metric, its mean and standard error over seeds."""
    d = df[(df.section == section) & (df.metric == metric) & (df.budget_per_user == level)]
    wide = d.pivot_table(index="seed", columns="policy", values="value")
    diff = wide[a] - wide[b]
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))


def test_campaign_averages_lose_value_and_hide_efficient_edges(lesson_rows):
    df = lesson_rows
    # the best campaign-level plan (true cell means) against the user-action oracle
    gap, se = _paired(df, "campaign", "incremental_value", "oracle", "campaign_average_truth",
                      0.4)
    assert gap > 3 * se and gap > 0
    # (the learned user-action heads against the campaign readout of the same log: +0.05 +-
    # 0.03 per user at this size, not resolved by 3 seeds; the full-size job measures it)
    oracle = df[(df.section == "campaign") & (df.policy == "oracle")]
    share = oracle[oracle.metric == "efficient_edges_in_inefficient_campaigns"].value
    value_share = oracle[oracle.metric == "oracle_value_in_inefficient_campaigns"].value
    assert (share > 0.1).all() and (value_share > 0.1).all() and (value_share < 1).all()


def test_forced_offer_leaks_budget_only_past_the_binding_point(lesson_rows):
    df = lesson_rows
    forced = df[df.section == "forced"]
    # the oracle never spends on users whose best action is nothing (pairs with tau_v <= 0 are
    # pruned); the forced policy on truth does once the budget exceeds what offers can absorb
    assert np.allclose(forced[(forced.policy == "oracle") & (forced.metric == "leaked_cost")]
                       .value, 0.0)
    leak, se = _paired(df, "forced", "leaked_cost", "forced_offer_truth", "oracle", 8.0)
    assert leak > 3 * se and leak > 0
    lost, se = _paired(df, "forced", "incremental_value", "oracle", "forced_offer_truth", 8.0)
    assert lost > 3 * se
    # where the budget binds the two coincide
    same, _ = _paired(df, "forced", "incremental_value", "oracle", "forced_offer_truth", 0.4)
    assert abs(same) < 1e-9
    treated = forced[(forced.policy == "forced_offer_truth") & (forced.metric == "treated_share")
                     & (forced.budget_per_user == 8.0)].value
    assert (treated > 0.99).all()


def test_lessons_tables_figures_and_bad_input(lesson_rows, tmp_path):
    paths = lessons.write_results(lesson_rows, tmp_path)
    assert {p.name for p in paths} >= {"lessons.csv", "lessons.md", "lessons_campaign.png",
                                       "lessons_forced.png"}
    text = (tmp_path / "lessons.md").read_text()
    assert "| campaign_average |" in text and "| forced_offer_truth |" in text
    assert lessons.headline(lesson_rows) is not None
    with pytest.raises(ValueError, match="forced_budgets"):
        lessons.LessonsSuiteConfig(forced_budgets=())
    with pytest.raises(ValueError, match="confounded"):
        lessons.LessonsSuiteConfig(logging=lessons.LoggingConfig(kind="confounded"))


def test_campaign_readout_is_the_cell_difference_in_means():
    seg = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    act = np.array([0, 1, 0, 1, 0, 1, 0, 2])
    y = np.array([1.0, 3.0, 1.0, 5.0, 0.0, 2.0, 2.0, 4.0])
    p = np.full(8, 0.5)
    elig = np.ones((8, 3), dtype=bool)
    elig[:4, 2] = False  # nobody in segment 0 can get offer 2: its campaign reads 0
    out = lessons.campaign_effects(seg, act, y, p, elig, 2)
    assert np.allclose(out, [[0.0, 3.0, 0.0], [0.0, 1.0, 3.0]])
    elig[:4, 2] = True  # now segment 0 could get offer 2 but none was logged
    with pytest.raises(ValueError, match="campaign \\(0, 2\\) has no readout"):
        lessons.campaign_effects(seg, act, y, p, elig, 2)
