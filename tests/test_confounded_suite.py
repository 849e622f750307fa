"""The confounded-history suite (issue 16): on the compact config over five seeds, the direction
of every effect, each with a tolerance derived from seed-to-seed standard errors.

- The naive difference in means on the confounded log is biased upwards (the rule treats the
  users who buy anyway) and on the randomised log it is not; the cost contrast has no selection
  bias on either log (no offer costs nothing for everyone), only the gap between the targeted
  users' effect and the average one.
- Every learner's value and cost PEHE is worse when fitted on the confounded log than on a
  randomised log of the same size, and so is its budgeted policy's regret once it is held to the
  budget; the policy overspends (its cost heads extrapolate off the rule's support), which is
  how its plain regret can look *better* than the randomised one's at a small budget.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pandas as pd
import pytest

from estimators.crossfit import fold_ids
from estimators.heads import HeadConfig
from experiments.suites import confounded
from experiments.suites.allocation import features
from experiments.suites.base import stream
from experiments.suites.confounded import SUITE, ConfoundedSuiteConfig
from simulators import LoggingConfig, default_params, simulate

SEEDS = (0, 1, 2, 3, 4)
CFG = ConfoundedSuiteConfig.compact()


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return SUITE.rows(CFG, seeds=list(SEEDS), progress=False)


def _per_seed(rows: pd.DataFrame, **keys) -> pd.DataFrame:
    """One value per (seed, logging) of the rows matching ``keys`` (NaN keys match NaN)."""
    mask = np.ones(len(rows), bool)
    for k, v in keys.items():
        mask &= rows[k].isna().to_numpy() if v is None else (rows[k] == v).to_numpy()
    out = rows[mask].pivot_table(index="seed", columns="logging", values="value")
    assert len(out) == len(SEEDS), keys
    return out


def _mean_se(x: pd.Series) -> tuple[float, float]:
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x)))


@pytest.mark.slow  # the suite's multi-seed run: make slow (cold, ~70 s)
def test_contract_tables_and_figure(rows, tmp_path):
    assert {"metric", "value", "seed", *SUITE.key_columns} <= set(rows.columns)
    assert set(rows.logging) == set(confounded.LOGGINGS)
    assert set(CFG.learners) <= set(rows.estimator)
    assert np.isfinite(rows.value).all()
    keys = ["seed", "logging", *confounded.KEYS]
    assert not rows.fillna({"offer": -1, "budget_per_user": -1}).duplicated(keys).any()
    # the rule logs every action 0 or the deepest eligible offer: the shallow offers are starved
    log_rows = rows[(rows.estimator == "log") & (rows.metric == "rows")]
    conf = log_rows[log_rows.logging == "confounded"].groupby("offer").value.mean()
    unif = log_rows[log_rows.logging == "uniform"].groupby("offer").value.mean()
    assert conf[1.0] < 0.01 * unif[1.0] and conf[4.0] > unif[4.0]
    paths = confounded.write_results(rows, tmp_path)
    assert [p.name for p in paths] == ["confounded.csv", "confounded.md", "confounded.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    table = (tmp_path / "confounded.md").read_text()
    assert "| dr | estimated / logged |" in table and "### naive contrasts, value" in table
    head = SUITE.headline(rows)
    assert {"confounded", "uniform", "confounded - uniform"} <= set(head.columns)
    assert (head.estimator == "naive").any() and (head.metric == "regret_on_budget").any()


@pytest.mark.slow  # the suite's multi-seed run: make slow (cold, ~70 s)
def test_dr_gets_estimated_propensities_without_overlap():
    """On the confounded log (no action_prob) dr is fitted on estimated propensities: proper
    distributions over the eligible identified actions, and near-degenerate, because the rule is
    a deterministic function of the features (no overlap for the AIPW correction to use); on the
    randomised log the same estimator recovers the flat logged ones."""
    params = default_params(CFG.world)
    median = {}
    for kind in confounded.LOGGINGS:
        log = simulate(stream(0, "train", kind), params, CFG.world, CFG.n_train,
                       LoggingConfig(kind=kind))
        assert (log.action_prob is None) == (kind == "confounded")
        actions = np.flatnonzero(np.bincount(log.action, minlength=log.n_actions) >= 2)
        e = confounded.estimated_propensities(features(log.x, log.segment), log.action,
                                              log.eligible, actions, CFG.propensity_floor)
        allowed = log.eligible & np.isin(np.arange(log.n_actions), actions)
        np.testing.assert_allclose(e.sum(axis=1), 1.0)
        assert (e[~allowed] == 0).all() and (e[allowed] > 0).all()
        median[kind] = float(np.median(e[np.arange(log.n), log.action]))
        if kind == "uniform":  # the logged propensities, 1 / (number of eligible actions)
            assert abs(median[kind] - np.median(log.pscore)) < 0.05
    assert median["confounded"] > 0.8 > 0.3 > median["uniform"], median


@pytest.mark.slow  # the suite's multi-seed run: make slow (cold, ~70 s)
def test_naive_contrast_biased_on_confounded_log_only(rows):
    """Per offer with >= 100 logged rows in every seed: the value contrast's bias (contrast -
    true effect on the treated) is > 3 s.e. above zero on the confounded log and within 3 s.e. of
    zero on the randomised one; the s.e. is the larger of the seed-to-seed s.e. and the
    within-log s.e. of the mean over seeds. The cost contrast has no selection bias on either log
    but overstates the average effect (bias vs ATE > 3 s.e.) on the confounded one."""
    counts = rows[(rows.estimator == "log") & (rows.metric == "rows")]
    offers = [a for a, g in counts.groupby("offer") if a > 0 and g.value.min() >= 100]
    assert offers, "no offer is logged often enough"
    for head in confounded.HEADS:
        for a in offers:
            bias = _per_seed(rows, estimator="naive", head=head, offer=a, metric="bias")
            bias_ate = _per_seed(rows, estimator="naive", head=head, offer=a, metric="bias_ate")
            within = _per_seed(rows, estimator="naive", head=head, offer=a, metric="se")
            for kind in confounded.LOGGINGS:
                m, se = _mean_se(bias[kind])
                se = max(se, float(np.sqrt((within[kind] ** 2).mean() / len(SEEDS))))
                if head == "value" and kind == "confounded":
                    assert m > 3 * se, (head, a, kind, m, se)
                else:  # randomised log, or cost (no-offer cost is 0 for everyone)
                    assert abs(m) < 3 * se, (head, a, kind, m, se)
            m, se = _mean_se(bias_ate["confounded"])
            assert m > 3 * se, ("bias vs ATE", head, a, m, se)


@pytest.mark.slow  # the suite's multi-seed run: make slow (cold, ~70 s)
@pytest.mark.parametrize("head", confounded.HEADS)
def test_every_learner_pehe_worse_on_confounded_log(rows, head):
    """PEHE(confounded) - PEHE(uniform), paired by seed: mean > 2 s.e. for every learner."""
    for name in CFG.learners:
        p = _per_seed(rows, estimator=name, head=head, offer=None, metric="pehe")
        m, se = _mean_se(p["confounded"] - p["uniform"])
        assert m > 2 * se and m > 0, (name, head, m, se)


@pytest.mark.slow  # the suite's multi-seed run: make slow (cold, ~70 s)
def test_policies_from_confounded_log_overspend_and_lose_value_on_budget(rows):
    """At every budget and for every learner, paired by seed: the confounded-log policy's true
    cost / budget and its regret when held to the budget exceed the randomised-log policy's by
    > 2 s.e.; at the smallest budget its plain regret is lower on average (value bought with
    money it was not given)."""
    low = min(CFG.budgets)
    trap = []
    for name in CFG.learners:
        for b in CFG.budgets:
            for metric in ("cost_ratio", "regret_on_budget"):
                p = _per_seed(rows, estimator=name, head="policy", budget_per_user=b,
                              metric=metric)
                m, se = _mean_se(p["confounded"] - p["uniform"])
                assert m > 2 * se and m > 0, (name, b, metric, m, se)
        p = _per_seed(rows, estimator=name, head="policy", budget_per_user=low, metric="regret")
        trap.append(p["confounded"] - p["uniform"])
    m, se = _mean_se(pd.concat(trap, axis=1).mean(axis=1))  # averaged over learners per seed
    assert m < -2 * se, (m, se)


class _Log:
    """The part of a LoggedData the offer-support rules read: actions and ``subset``."""

    def __init__(self, action: np.ndarray, n_actions: int = 3) -> None:
        self.action, self.n_actions = action, n_actions

    def subset(self, rows: np.ndarray) -> _Log:
        return _Log(self.action[rows], self.n_actions)


def test_thin_offers_are_left_out_not_invented():
    """An offer with fewer than min_offer_rows rows is not identified; a cross-fitted learner
    also drops an offer whose rows all sit in one of its folds (its folds would fit it on
    nothing), and the others keep every offer."""
    n = 400
    folds = np.asarray(fold_ids(n, 2, jax.random.key(0)))
    action = np.where(np.arange(n) % 2 == 0, 0, 2)
    action[np.flatnonzero(folds == 0)[:3]] = 1  # offer 1: three rows, all in fold 0
    log = _Log(action)
    ok = confounded._identified(log, 2)
    assert ok.tolist() == [True, True, True]
    assert confounded._identified(log, 4).tolist() == [True, False, True]
    assert confounded._cross_fit_support(log, ok, [HeadConfig(learner="t")]).tolist() == [
        True, True, True]
    kept = confounded._cross_fit_support(log, ok, [HeadConfig(learner="dr", n_folds=2)])
    assert kept.tolist() == [True, False, True]
    assert confounded._restrict(log, kept).action.tolist().count(1) == 0
    assert confounded._restrict(log, ok) is log  # nothing dropped: the same arrays, same shapes


def test_bad_inputs_name_the_field_and_the_fix():
    with pytest.raises(ValueError, match=r"ConfoundedSuiteConfig\.n_train.*Fix: .*n_train="):
        dataclasses.replace(CFG, n_train=100)
    with pytest.raises(ValueError, match=r"ConfoundedSuiteConfig\.learners.*'magic'.*Fix"):
        dataclasses.replace(CFG, learners=("t", "magic"))
    with pytest.raises(ValueError, match=r"ConfoundedSuiteConfig\.budgets.*Fix"):
        dataclasses.replace(CFG, budgets=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"ConfoundedSuiteConfig\.min_offer_rows"):
        dataclasses.replace(CFG, min_offer_rows=1)
    with pytest.raises(ValueError, match=r"ConfoundedSuiteConfig\.propensity_floor"):
        dataclasses.replace(CFG, propensity_floor=0.0)
    # the suite fixes its two loggings: a global logging override is refused, not ignored
    with pytest.raises(ValueError, match="does not use a logging config"):
        SUITE.make_config(groups={"logging": {"kind": "uniform"}}, compact=True)
    assert SUITE.make_config({"n_train": 2_000}, compact=True).n_train == 2_000


@pytest.mark.slow  # the suite's multi-seed run: make slow (cold, ~70 s)
def test_a_seed_reproduces_its_rows(rows):
    """A row is reproducible from its seed alone (every stream derives from it)."""
    again = confounded.run(CFG, seed=SEEDS[1], progress=False)
    first = rows[rows.seed == SEEDS[1]].reset_index(drop=True)
    pd.testing.assert_frame_equal(again[first.columns], first)
