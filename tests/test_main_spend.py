"""The main job's spend recalibration (``MainSuiteConfig.spend_holdout_fraction``): the heads
never see the held-out rows, which are the last rows of each seed's training log; the learned
policy is allocated at the internal budget that :func:`policies.spend.calibrate_budget` returns
on exactly those rows, the oracle keeps the nominal budget, the default job is unchanged, logs
that support a subset of offers work, and bad settings name their field."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import experiments.main_benchmark as main_benchmark
from estimators.heads import UpliftHeads
from experiments.configs import LoggingConfig, PolicyConfig
from experiments.main_benchmark import MainSuiteConfig, run, run_batch
from experiments.suites.base import stream
from simulators import default_params, simulate_batch

SMALL = dict(n_train=1200, n_eval=600, policy=PolicyConfig(budget_per_user=0.1))
SEEDS = [0, 1]


def _recorded_run(cfg: MainSuiteConfig, seeds: list[int]):
    """The job's rows with the heads' fitted ``x`` per seed, each spend holdout and its
    calibration, and the budgets handed to the allocator (the learned policy's only)."""
    calls: dict[str, list] = {"fit": [], "spend": [], "allocate": []}
    real_fit, real_spend, real_alloc = (UpliftHeads.fit_batch, main_benchmark._calibrate_spend,
                                        main_benchmark.allocate)

    def fit_batch(self, xs, *args, **kwargs):
        calls["fit"].append([np.asarray(x) for x in xs])
        return real_fit(self, xs, *args, **kwargs)

    def calibrate_spend(cfg_, heads, holdout, *args):
        out = real_spend(cfg_, heads, holdout, *args)
        calls["spend"].append((holdout, out))
        return out

    def allocate(*args, **kwargs):
        calls["allocate"].append(kwargs["budget"])
        return real_alloc(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(UpliftHeads, "fit_batch", fit_batch)
        mp.setattr(main_benchmark, "_calibrate_spend", calibrate_spend)
        mp.setattr(main_benchmark, "allocate", allocate)
        rows = run_batch(cfg, seeds=seeds, progress=False)
    return rows, calls


@pytest.fixture(scope="module")
def recorded():
    return _recorded_run(MainSuiteConfig(**SMALL, spend_holdout_fraction=0.25), SEEDS)


def test_the_holdout_is_the_training_logs_tail_and_the_heads_never_see_it(recorded):
    _, calls = recorded
    cfg = MainSuiteConfig(**SMALL)
    train = simulate_batch(jnp.stack([stream(s, "train") for s in SEEDS]),
                           default_params(cfg.world), cfg.world, cfg.n_train, cfg.logging)
    (fitted_x,) = calls["fit"]
    for i, ((holdout, _), x_fit) in enumerate(zip(calls["spend"], fitted_x, strict=True)):
        full = np.asarray(train.x[i])
        np.testing.assert_array_equal(x_fit, full[:900])  # 1200 - round(0.25 * 1200) rows
        np.testing.assert_array_equal(np.asarray(holdout.x), full[900:])
        np.testing.assert_array_equal(np.asarray(holdout.cost), np.asarray(train.cost[i])[900:])
        fit_rows = {r.tobytes() for r in x_fit}
        assert not any(r.tobytes() in fit_rows for r in np.asarray(holdout.x))


def test_the_learned_policy_uses_the_calibrated_budget_and_the_oracle_the_nominal(recorded):
    rows, calls = recorded
    assert len(calls["spend"]) == len(calls["allocate"]) == len(SEEDS)
    for seed, (_, cal), used in zip(SEEDS, calls["spend"], calls["allocate"], strict=True):
        assert used == pytest.approx(cal.internal_budget_per_user * 600, rel=1e-12)
        assert cal.internal_budget_per_user > 0
        # the holdout estimate at b*: the bisection's lower end, or the cap when it stays below
        assert cal.estimated_cost_per_user <= 0.1 + 1e-12
        got = rows[rows.seed == seed][[
            "internal_budget_per_user", "spend_holdout_estimate", "spend_holdout_stderr",
            "spend_nominal_estimate", "spend_converged", "spend_capped"]].drop_duplicates()
        assert len(got) == 1
        assert got.iloc[0].tolist() == pytest.approx(
            [cal.internal_budget_per_user, cal.estimated_cost_per_user, cal.stderr,
             cal.nominal_estimate, cal.converged, cal.capped], rel=1e-12)
    # the budgets differ between the seeds' calibrations, while the oracle spends the nominal
    # budget exactly (it binds at 0.1 per user) in every seed: its true cost is an exact LP
    # vertex, so the only error is float64 summation over 600 users, about 600 * 2.2e-16 * 0.1
    assert len({c.internal_budget_per_user for _, c in calls["spend"]}) == len(SEEDS)
    oracle = rows[(rows.policy == "oracle") & (rows.estimator == "truth")
                  & (rows.metric == "incremental_cost")]
    assert oracle.value.tolist() == pytest.approx([0.1] * len(SEEDS), rel=0, abs=1e-13)


def test_off_by_default_the_heads_fit_the_whole_log_and_the_rows_keep_their_columns():
    assert MainSuiteConfig().spend_holdout_fraction == 0.0
    rows, calls = _recorded_run(MainSuiteConfig(**SMALL), [0])
    assert [len(x) for x in calls["fit"][0]] == [1200] and not calls["spend"]
    assert calls["allocate"] == [pytest.approx(0.1 * 600)]
    assert not any(c.startswith("spend_") or c == "internal_budget_per_user"
                   for c in rows.columns)


def test_a_log_that_supports_one_offer_calibrates_on_that_offer():
    cfg = MainSuiteConfig(**SMALL, logging=LoggingConfig(kind="holdout"),
                          spend_holdout_fraction=0.5)
    rows = run(cfg, seed=0, progress=False)
    assert set(rows.supported_actions) == {"0,1"}
    assert np.isfinite(rows["internal_budget_per_user"]).all()
    learned = rows[(rows.policy == "cost_aware_uplift") & (rows.estimator == "truth")
                   & (rows.metric == "incremental_cost")].value.item()
    assert np.isfinite(learned) and learned >= 0


@pytest.mark.parametrize("kwargs", [dict(spend_holdout_fraction=-0.1),
                                    dict(spend_holdout_fraction=0.9),
                                    dict(spend_holdout_fraction=True),
                                    dict(spend_holdout_fraction="half"),
                                    dict(spend_holdout_fraction=0.01),
                                    dict(spend_holdout_fraction=0.5,
                                         policy=PolicyConfig(budget_per_user=0.0))])
def test_bad_settings_name_the_field(kwargs):
    with pytest.raises(ValueError, match="spend_holdout_fraction"):
        MainSuiteConfig(**{**SMALL, **kwargs})
