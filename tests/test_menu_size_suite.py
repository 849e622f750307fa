"""The menu-size suite (lesson 2): the contract on its compact config, and the direction of each
effect, asserted with tolerances from seed-to-seed standard errors (one shared run of 3 seeds):
support per offer falls like 1/(K+1); the variance of the effect estimates, PEHE, overspending
and the true regret at the budget rise with K; the weights' ESS falls with K and IPS
under-covers under skewed logging at the largest K; coarse-then-expand estimates its explored
offers better than the full menu does, is not worse in regret, and costs little menu value."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from experiments.suites import _plotting
from experiments.suites.base import stream
from experiments.suites.menu_size import (
    DESIGNS,
    SUITE,
    MenuSizeSuiteConfig,
    _key,
    aggregate,
    coarse_offers,
    expand_offers,
    paired_gap,
    summary,
    write_results,
)

SEEDS = (0, 1, 2)
Z = 2.0  # a direction holds when the seed-paired gap exceeds Z standard errors
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cfg() -> MenuSizeSuiteConfig:
    return MenuSizeSuiteConfig.compact()


@pytest.fixture(scope="module")
def rows(cfg) -> pd.DataFrame:
    return SUITE.rows(cfg, seeds=list(SEEDS), progress=False)


def _per_seed(rows: pd.DataFrame, metric: str, logging: str, k: int,
              design: str = "sweep") -> pd.Series:
    d = rows[(rows.design == design) & (rows.logging == logging) & (rows.n_offers == k)
             & (rows.metric == metric)]
    return d.set_index("seed")["value"].sort_index()


def _gap(rows: pd.DataFrame, metric: str, logging: str, k_small: int, k_large: int
         ) -> tuple[float, float]:
    """Mean and standard error over seeds of ``metric(K large) - metric(K small)``."""
    g = _per_seed(rows, metric, logging, k_large) - _per_seed(rows, metric, logging, k_small)
    return float(g.mean()), float(g.std(ddof=1) / np.sqrt(len(g)))


@pytest.mark.slow  # the suite's multi-seed run: make slow (cold, ~70 s)
def test_rows_follow_the_contract(rows, cfg):
    assert {"metric", "value", "seed", *SUITE.key_columns} <= set(rows.columns)
    assert np.isfinite(rows.value).all()
    sweep = rows[rows.design == "sweep"]
    assert set(sweep.logging) == set(cfg.loggings)
    assert set(sweep.n_offers) == set(cfg.menu_sizes)
    remedy = rows[rows.design != "sweep"]
    assert set(remedy.design) == set(DESIGNS) and set(remedy.n_offers) == {max(cfg.menu_sizes)}
    cov = rows[rows.metric.str.startswith("coverage_")].value
    assert ((cov >= 0) & (cov <= 1)).all()
    assert (sweep[sweep.metric == "tau_variance"].value > 0).all()
    share = sweep[sweep.metric == "variance_share"].value
    assert ((share > 0) & (share < 1.5)).all()
    # the oracle on the full menu has zero menu cost; a smaller menu cannot beat it
    restricted = remedy[remedy.metric == "restricted_oracle_regret"]
    assert (restricted.value >= -1e-9).all()
    assert np.allclose(restricted[restricted.design == "full_menu"].value, 0.0)
    n_exp = remedy[remedy.metric == "n_explored"].set_index("design").value
    assert (n_exp.loc["full_menu"] == max(cfg.menu_sizes)).all()
    assert (n_exp.loc["coarse_only"] == cfg.coarse_size).all()


@pytest.mark.slow  # the suite's multi-seed run: make slow (cold, ~70 s)
def test_support_per_offer_falls_like_one_over_k(rows, cfg):
    small, large = min(cfg.menu_sizes), max(cfg.menu_sizes)
    for logging in cfg.loggings:
        a = _per_seed(rows, "rows_median", logging, small)
        b = _per_seed(rows, "rows_median", logging, large)
        gap = b - a
        assert gap.mean() < -Z * gap.std(ddof=1) / np.sqrt(len(gap)), logging
        # the share scales like 1/(K+1) up to eligibility (10% of offers unavailable per user,
        # the deepest never for new users) and the logger's skew: a structural tolerance
        ratio = b.mean() / a.mean()
        assert 0.6 * (small + 1) / (large + 1) < ratio < 1.5 * (small + 1) / (large + 1)
    for k in cfg.menu_sizes:  # a uniform logger's smallest propensity: all K+1 eligible
        assert np.allclose(_per_seed(rows, "pscore_min", "uniform", k), 1.0 / (k + 1))
        assert (_per_seed(rows, "pscore_min", "warm_start", k)
                < _per_seed(rows, "pscore_min", "uniform", k)).all()


@pytest.mark.parametrize("metric", ["tau_variance", "pehe_value", "regret_at_budget",
                                    "cost_ratio"])
@pytest.mark.slow  # the suite's multi-seed run: make slow (cold, ~70 s)
def test_variance_pehe_overspend_and_regret_rise_with_k(rows, cfg, metric):
    for logging in cfg.loggings:
        mean, se = _gap(rows, metric, logging, min(cfg.menu_sizes), max(cfg.menu_sizes))
        assert mean > Z * se, (metric, logging, mean, se)


@pytest.mark.slow  # the suite's multi-seed run: make slow (cold, ~70 s)
def test_overlap_falls_with_k_and_ips_undercovers_under_skew(rows, cfg):
    for logging in cfg.loggings:
        mean, se = _gap(rows, "ess_share", logging, min(cfg.menu_sizes), max(cfg.menu_sizes))
        assert mean < -Z * se, logging
    cov = _per_seed(rows, "coverage_ips", "warm_start", max(cfg.menu_sizes))
    se = max(cov.std(ddof=1), np.sqrt(0.95 * 0.05 / cfg.n_ope_logs)) / np.sqrt(len(cov))
    assert cov.mean() < 0.95 - Z * se, cov


@pytest.mark.slow  # the suite's multi-seed run: make slow (cold, ~70 s)
def test_coarse_then_expand_estimates_better_and_is_not_worse(rows, cfg):
    # paired on the same offers: the remedy's heads against the full menu's heads
    mean, se, _ = paired_gap(rows, "pehe_value", "coarse_then_expand",
                             baseline="coarse_then_expand",
                             baseline_metric="pehe_full_menu_heads")
    assert mean < -Z * se, (mean, se)
    # regret at the budget: not worse than the full menu beyond the seed noise
    mean, se, _ = paired_gap(rows, "regret_at_budget", "coarse_then_expand")
    assert mean < Z * se, (mean, se)
    # expanding around the winners keeps most of the menu's value, and more than never expanding
    # (the explored offers contain the coarse menu, so the restricted oracle can only gain)
    rem = aggregate(rows[rows.design != "sweep"]).set_index(["design", "metric"])
    assert rem.loc[("coarse_then_expand", "restricted_oracle_regret"), "mean"] < 0.05
    ro = rows[rows.metric == "restricted_oracle_regret"].pivot_table(index="seed",
                                                                    columns="design",
                                                                    values="value")
    assert (ro.coarse_then_expand <= ro.coarse_only + 1e-9).all()
    per_offer = rows[rows.metric == "rows_per_explored_offer"].pivot_table(
        index="seed", columns="design", values="value")
    assert (per_offer.coarse_then_expand > per_offer.full_menu).all()


def _figure_check():
    """The figure checks of tests/test_figures.py (one legend, labelled axes and ticks)."""
    spec = importlib.util.spec_from_file_location("_figure_checks", REPO / "tests"
                                                  / "test_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._check


@pytest.mark.slow  # the suite's multi-seed run: make slow (cold, ~70 s)
def test_writes_tables_and_figures_in_the_shared_style(rows, tmp_path, monkeypatch):
    problems: list[str] = []
    drawn: list[str] = []
    check = _figure_check()
    monkeypatch.setattr(_plotting, "SAVE_HOOKS",
                        [lambda fig, name: (drawn.append(name), check(fig, name, problems))])
    paths = write_results(rows, tmp_path)
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    assert sorted(drawn) == ["menu_size_remedy.png", "menu_size_sweep.png"]
    assert not problems, "\n".join(problems)
    text = (tmp_path / "menu_size.md").read_text()
    assert "### Sweep, warm_start logging" in text and "### Remedy at K = 16" in text
    assert "paired by seed" in text
    head = summary(rows)
    assert {"design", "logging", "n_offers", "regret_at_budget", "coverage_ips"} <= set(head)
    assert len(head) == len(rows.groupby(["design", "logging", "n_offers"]))


def test_menus_are_evenly_spaced_and_expand_to_adjacent_depths():
    assert coarse_offers(32, 4).tolist() == [1, 11, 22, 32]
    assert coarse_offers(8, 3).tolist() == [1, 5, 8]
    assert coarse_offers(7, 1).tolist() == [4]
    assert expand_offers(np.array([11]), 32, 2).tolist() == [9, 10, 11, 12, 13]
    assert expand_offers(np.array([1, 32]), 32, 1).tolist() == [1, 2, 31, 32]
    assert expand_offers(np.array([5]), 8, 0).tolist() == [5]


def test_streams_follow_the_seed_rule():
    a, b = _key(3, "train", 8, "warm_start"), stream(3, "train", 8, "warm_start")
    assert np.array_equal(jax.random.key_data(a), jax.random.key_data(b))


@pytest.mark.parametrize(("change", "field"), [
    ({"menu_sizes": (0, 2)}, "menu_sizes"),
    ({"menu_sizes": (16, 2)}, "menu_sizes"),
    ({"coarse_size": 16}, "coarse_size"),
    ({"n_winners": 5}, "n_winners"),
    ({"loggings": ("confounded",)}, "loggings"),
    ({"n_fits": 1}, "n_fits"),
    ({"phase1_share": 1.0}, "phase1_share"),
])
def test_bad_config_names_the_field_and_the_fix(change, field):
    base = dataclasses.asdict(MenuSizeSuiteConfig.compact())
    kwargs = {k: v for k, v in base.items() if k in change or not isinstance(v, dict)}
    kwargs.update(change)
    with pytest.raises(ValueError, match=rf"MenuSizeSuiteConfig\.{field}: .*Fix: "):
        MenuSizeSuiteConfig(**kwargs)


def test_experiment_file_composes_to_the_compact_preset():
    from hydra import compose, initialize_config_dir

    from experiments.run import plan

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            "experiment=menu_size", "experiment.compact=true",
            "experiment.params.menu_sizes=[2,8]", "policy.budget_per_user=0.3"])
    (suite, config), = plan(cfg)
    assert suite is SUITE or suite.name == "menu_size"
    assert config.menu_sizes == (2, 8) and config.policy.budget_per_user == 0.3
    assert config.n_train == MenuSizeSuiteConfig.compact().n_train
