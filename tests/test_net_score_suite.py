"""The net-score suite (lesson 3): one net-score head against separate value and cost heads.

The protocol's pieces against NumPy references on tiny constructed cases (net label, best offer,
IPS cost terms, the lambda / threshold rule, the oracle-lambda bound, truth-binned calibration);
the exact invariants of a small run (ridge is linear in its label, so at an unbinding budget the
ridge net score and the ridge pair make the same policy; nothing that keeps to the true budget
beats the oracle; the oracle-lambda bound dominates every truly feasible net policy);
reproducibility from the seed; bad configs name their field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from estimators.heads import HeadConfig, make_learner
from experiments.configs import LoggingConfig
from experiments.suites import net_score as ns
from experiments.suites.allocation import features
from simulators import default_params, simulate

REPO = Path(__file__).resolve().parents[1]
BUDGET_METRICS = {"incremental_value", "incremental_cost", "regret_pct", "cost_over_budget",
                  "estimated_cost_over_budget", "treated_share", "lambda_used"}
CFG = dataclasses.replace(ns.NetScoreSuiteConfig.compact(), n_train=2000, n_holdout=2000,
                          n_eval=2000, lambdas=(0.0, 1.0, 4.0), budgets=(1.0, 25.0))


@pytest.fixture(scope="module")
def rows():
    return ns.SUITE.rows(CFG, seeds=[0], progress=False)


# ------------------------------------------------------------------ NumPy references


def test_net_label_best_offer_and_policy():
    assert np.allclose(ns.net_label([3.0, 0.0, 10.0], [1.0, 2.0, 0.0], 2.0), [1.0, -4.0, 10.0])
    score = np.array([[0.0, 1.0, 3.0], [0.0, -2.0, -1.0], [0.0, 5.0, 9.0], [0.0, 2.0, 2.0]])
    elig = np.array([[1, 1, 1], [1, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=bool)
    best, m = ns.best_offer(score, elig)
    assert best.tolist() == [2, 2, 1, 0] and m[:3].tolist() == [3.0, -1.0, 5.0]
    assert m[3] == -np.inf
    dist = ns.net_policy(score, elig, 0.0)
    assert np.argmax(dist, axis=1).tolist() == [2, 0, 1, 0] and np.allclose(dist.sum(1), 1)
    assert np.argmax(ns.net_policy(score, elig, -1.5), axis=1).tolist() == [2, 2, 1, 0]


def test_ips_cost_terms_match_a_loop():
    rng = np.random.default_rng(0)
    n = 30
    p = rng.dirichlet(np.ones(3), size=n)
    a = np.array([rng.choice(3, p=r) for r in p])
    c = rng.exponential(size=n) * (a > 0) + 0.5 * (a == 0)  # cost at no offer too
    best = rng.integers(1, 3, size=n)
    want = [(c[i] / p[i, a[i]] if a[i] == best[i] else 0.0)
            - (c[i] / p[i, 0] if a[i] == 0 else 0.0) for i in range(n)]
    assert np.allclose(ns.ips_cost_terms(best, a, c, p), want)


def _reference_rule(scores, lambdas, elig, a, c, p, budget):
    """The rule by brute force: the treated holdout set of every candidate threshold."""
    n = len(a)

    def cost(score, t):
        best, m = ns.best_offer(score, elig)
        return sum(c[i] / p[i, a[i]] for i in range(n) if m[i] > t and a[i] == best[i]) / n

    c0 = [cost(s, 0.0) for s in scores]
    if c0[0] <= budget:
        return 0, 0.0
    ok = [j for j, v in enumerate(c0) if v <= budget]
    j = ok[0] if ok else len(scores) - 1
    _, m = ns.best_offer(scores[j], elig)
    cands = sorted({*m[np.isfinite(m)].tolist(), 0.0, -np.inf})
    if ok:  # fill: the lowest threshold <= 0 within the budget
        t = min(t for t in cands if t <= 0 and cost(scores[j], t) <= budget)
    else:  # cap: the lowest threshold >= 0 within the budget
        t = min(t for t in cands if t >= 0 and cost(scores[j], t) <= budget)
    return j, t


def test_select_net_policy_matches_the_brute_force_rule():
    rng = np.random.default_rng(1)
    n, k1 = 40, 3
    elig = np.ones((n, k1), dtype=bool)
    elig[::7, 2] = False
    p = np.full((n, k1), 1.0 / k1)
    a = rng.integers(0, k1, size=n)
    c = np.where(a > 0, rng.uniform(1.0, 3.0, size=n), 0.0)
    lambdas = (0.0, 0.5, 2.0)
    base = rng.normal(size=(n, k1))
    scores = [np.c_[np.zeros(n), base[:, 1:] - lam * np.array([0.4, 0.9])] for lam in lambdas]
    seen = set()
    for budget in (0.05, 0.2, 0.4, 0.8, 1.5, 10.0):
        got = ns.select_net_policy(scores, lambdas, eligible=elig, action=a, cost=c,
                                   action_prob=p, budget_per_user=budget)
        j, t = _reference_rule(scores, lambdas, elig, a, c, p, budget)
        seen.add(got.mode)
        assert got.index == j and got.lam == lambdas[j]
        # same treated holdout users, and the chosen policy meets the budget by its estimate
        mine = np.argmax(ns.net_policy(scores[j], elig, got.threshold), axis=1)
        ref = np.argmax(ns.net_policy(scores[j], elig, t), axis=1)
        assert (mine == ref).all()
        best, _ = ns.best_offer(scores[j], elig)
        terms = ns.ips_cost_terms(best, a, c, p)
        assert np.isclose(got.estimated_cost, np.sum(terms[mine > 0]) / n)
        assert got.estimated_cost <= budget + 1e-12
    assert seen == {"unbinding", "fill", "cap"}


def test_oracle_lambda_is_the_best_feasible_prefix():
    rng = np.random.default_rng(2)
    n, k1 = 9, 3
    elig = np.ones((n, k1), dtype=bool)
    tv = np.c_[np.zeros(n), rng.normal(1.0, 1.0, size=(n, 2))]
    tc = np.c_[np.zeros(n), rng.uniform(0.5, 2.0, size=(n, 2))]
    scores = [tv + rng.normal(scale=0.5, size=tv.shape) - lam * tc for lam in (0.0, 1.0)]
    for budget in (0.2, 0.6, 5.0):
        _, dist = ns.oracle_lambda_policy(scores, eligible=elig, tau_value=tv, tau_cost=tc,
                                          budget_per_user=budget)
        best_v = 0.0
        for s in scores:  # every prefix of every grid model's order
            b, m = ns.best_offer(s, elig)
            order = np.argsort(-m)
            for k in range(n + 1):
                sel = order[:k]
                if tc[sel, b[sel]].sum() <= budget * n + 1e-12:
                    best_v = max(best_v, tv[sel, b[sel]].sum())
        assert np.isclose(np.sum(dist * tv), best_v)
        assert np.sum(dist * tc) <= budget * n + 1e-9 and np.allclose(dist.sum(1), 1)


def test_binned_calibration_error_by_hand():
    pred = np.array([[0, 1.0], [0, 2.0], [0, 3.0], [0, 4.0]])
    true = np.array([[0, 2.0], [0, 2.0], [0, 3.0], [0, 7.0]])
    # bins {1, 2} and {3, 4}: |1.5 - 2| and |3.5 - 5|, two users each
    assert np.isclose(ns.binned_calibration_error(pred, true, np.ones((4, 2), bool), 2), 1.0)
    assert ns.binned_calibration_error(true, true, np.ones((4, 2), bool), 2) == 0.0


def test_ridge_net_score_is_the_ridge_pair_net_score():
    world = ns.NetScoreSuiteConfig().world
    log = simulate(ns.stream(0, "train"), default_params(world), world, CFG.n_train,
                   LoggingConfig())
    f = features(log.x, log.segment)
    fit = lambda y: make_learner(HeadConfig()).fit(f, log.action, y, n_actions=log.n_actions)  # noqa: E731
    tv, tc = (np.asarray(fit(y).predict_tau(f)) for y in (log.value, log.cost))
    net = np.asarray(fit(ns.net_label(log.value, log.cost, 1.7)).predict_tau(f))
    assert np.allclose(net, tv - 1.7 * tc, atol=1e-8)


# ---------------------------------------------------------------------- the suite run


def _budget(df, world, approach, learner, level):
    d = df[(df.section == "budget") & (df.world == world) & (df.approach == approach)
           & (df.learner == learner) & (df.budget_per_user == level)]
    return d.set_index("metric").value


def test_run_returns_the_documented_finite_metrics(rows):
    assert set(rows.section) == {"labels", "heads", "calibration", "budget"}
    b = rows[rows.section == "budget"]
    for (approach, _), g in b.groupby(["approach", "learner"]):
        want = BUDGET_METRICS | (set() if approach == "oracle" else {"net_calibration"})
        assert set(g.metric) >= want
    assert np.isfinite(rows.value).all()
    h = rows[rows.section == "heads"]
    assert set(h.metric) == {"value_calibration", "cost_calibration", "value_calibration_rel",
                             "cost_calibration_rel"}
    assert set(rows[rows.section == "calibration"]["lambda"]) == set(CFG.lambdas)
    # the sparse world: value sparser and noisier than cost; cost denser than in the default
    lab = rows[rows.section == "labels"].pivot_table(index="world", columns="metric",
                                                     values="value")
    s = lab.loc["sparse_value"]
    assert s.value_nonzero_share < s.cost_nonzero_share and s.value_cv > 3 * s.cost_cv
    assert s.cost_nonzero_share > lab.loc["default"].cost_nonzero_share


def test_exact_invariants(rows):
    b = rows[rows.section == "budget"]
    for world in CFG.worlds:
        # at a budget that binds for nobody, the ridge net score at lambda = 0 is the ridge
        # value head, so both approaches treat the same users with the same offers
        sep, net = (_budget(rows, world, a, "ridge_t", 25.0) for a in ("separate", "net"))
        assert sep.lambda_used == 0 and net.lambda_used == 0
        for m in ("incremental_value", "incremental_cost", "treated_share", "net_calibration"):
            assert np.isclose(sep[m], net[m], rtol=1e-9, atol=1e-12), (world, m)
        for level in CFG.budgets:
            oracle = _budget(rows, world, "oracle", "truth", level)
            assert oracle.regret_pct == 0 and oracle.cost_over_budget <= 1 + 1e-9
            net, bound = (_budget(rows, world, a, "ridge_t", level)
                          for a in ("net", "net_oracle_lambda"))
            assert bound.cost_over_budget <= 1 + 1e-9
            if net.cost_over_budget <= 1:
                assert bound.incremental_value >= net.incremental_value - 1e-12
    # every approach meets the budget by its own estimate; nothing within the true budget beats
    # the oracle
    w = b.pivot_table(index=["world", "approach", "learner", "budget_per_user"],
                      columns="metric", values="value")
    assert (w.estimated_cost_over_budget <= 1 + 1e-9).all()
    assert (w.regret_pct[w.cost_over_budget <= 1] >= -1e-9).all()
    # ridge is linear in its label: the ridge pair's implied net score is the net-score model's
    c = rows[(rows.section == "calibration") & (rows.learner == "ridge_t")]
    c = c.pivot_table(index=["world", "lambda"], columns="approach", values="value")
    assert np.allclose(c.separate, c.net, rtol=1e-6)


def test_reproducible_from_the_seed_and_worlds_are_independent(rows):
    again = ns.run(dataclasses.replace(CFG, worlds=("sparse_value",)), seed=0, progress=False)
    mine = rows[rows.world == "sparse_value"].reset_index(drop=True)
    assert (again.metric.values == mine.metric.values).all()
    assert np.array_equal(again.value.values, mine.value.values)


def test_tables_figures_and_headline(rows, tmp_path):
    paths = ns.write_results(rows, tmp_path)
    assert {p.name for p in paths} == {"net_score.csv", "net_score.md", "net_score_budget.png",
                                       "net_score_calibration.png"}
    text = (tmp_path / "net_score.md").read_text()
    assert "### regret_pct" in text and "| sparse_value | net | ridge_t |" in text
    head = ns.headline(rows)
    assert set(head.metric) == {"regret_pct", "cost_over_budget"}


@pytest.mark.parametrize("change, field", [
    ({"lambdas": (1.0, 0.5)}, "lambdas"), ({"lambdas": (-1.0, 0.0)}, "lambdas"),
    ({"worlds": ("mars",)}, "worlds"), ({"net": ()}, "net"), ({"separate": ("x",)}, "separate"),
    ({"budgets": ()}, "budgets"), ({"budgets": (0.0,)}, "budgets"), ({"n_train": 10}, "n_train"),
    ({"n_bins": 1}, "n_bins"), ({"sparse_value_share": 0.0}, "sparse_value_share"),
    ({"sparse_redeem_prob": 1.5}, "sparse_redeem_prob"),
    ({"logging": LoggingConfig(kind="confounded")}, "logging"),
])
def test_bad_config_names_the_field(change, field):
    with pytest.raises(ValueError, match=f"NetScoreSuiteConfig.{field}"):
        dataclasses.replace(ns.NetScoreSuiteConfig(), **change)


def test_hydra_experiment_composes():
    from experiments.run import plan

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            "experiment=net_score", "experiment.compact=true",
            "experiment.params.lambdas=[0,2]", "learner.cost.alpha=3.0"])
    (suite, conf), = plan(cfg)
    assert suite.name == "net_score" and not suite.in_default
    assert conf.lambdas == (0, 2) and conf.learner.cost.alpha == 3.0
    assert conf.n_train == ns.NetScoreSuiteConfig.compact().n_train
    assert conf.worlds == ns.WORLDS
