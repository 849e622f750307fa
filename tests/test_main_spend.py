"""The main job's spend recalibration (``MainSuiteConfig.spend_holdout_fraction``): the heads
never see the held-out rows, the learned policy is allocated at the internal budget that
:func:`policies.spend.calibrate_budget` returns on exactly those rows, the oracle keeps the
nominal budget, the default job is unchanged, and bad fractions name their field."""

from __future__ import annotations

import pytest

import experiments.main_benchmark as main_benchmark
from estimators.heads import UpliftHeads
from experiments.configs import PolicyConfig
from experiments.main_benchmark import MainSuiteConfig, run, run_batch

SMALL = dict(n_train=1200, n_eval=600, policy=PolicyConfig(budget_per_user=0.1))


@pytest.fixture(scope="module")
def recorded():
    """One recalibrated two-seed job with its heads' fit sizes, the calibrations returned and
    the budgets handed to the allocator, recorded by wrapping the module's functions."""
    calls: dict[str, list] = {"fit": [], "calibrate": [], "allocate": []}
    real_fit, real_cal, real_alloc = (UpliftHeads.fit_batch, main_benchmark.calibrate_budget,
                                      main_benchmark.allocate)

    def fit_batch(self, xs, *args, **kwargs):
        calls["fit"].append([len(x) for x in xs])
        return real_fit(self, xs, *args, **kwargs)

    def calibrate(*args, **kwargs):
        out = real_cal(*args, **kwargs)
        calls["calibrate"].append((kwargs["action"], out))
        return out

    def allocate(*args, **kwargs):
        calls["allocate"].append(kwargs["budget"])
        return real_alloc(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(UpliftHeads, "fit_batch", fit_batch)
        mp.setattr(main_benchmark, "calibrate_budget", calibrate)
        mp.setattr(main_benchmark, "allocate", allocate)
        rows = run_batch(MainSuiteConfig(**SMALL, spend_holdout_fraction=0.25), seeds=[0, 1],
                         progress=False)
    return rows, calls


def test_heads_fit_without_the_holdout_and_the_policy_uses_its_budget(recorded):
    rows, calls = recorded
    assert calls["fit"] == [[900, 900]]  # 1200 - round(0.25 * 1200) rows per seed
    assert [len(a) for a, _ in calls["calibrate"]] == [300, 300]
    for (_, cal), used in zip(calls["calibrate"], calls["allocate"], strict=True):
        assert used == pytest.approx(cal.internal_budget_per_user * 600, rel=1e-12)
        # the calibrated allocation meets the target on the holdout estimate: the bisection's
        # lower end, or the cap (4x the nominal budget) when the estimate stays below it
        assert cal.internal_budget_per_user > 0
        assert cal.estimated_cost_per_user <= 0.1 + 1e-12
    for seed, (_, cal) in zip((0, 1), calls["calibrate"], strict=True):
        got = rows[rows.seed == seed][["internal_budget_per_user", "spend_holdout_estimate",
                                       "spend_holdout_stderr"]].drop_duplicates()
        assert len(got) == 1
        assert got.iloc[0].tolist() == pytest.approx(
            [cal.internal_budget_per_user, cal.estimated_cost_per_user, cal.stderr], rel=1e-12)
    oracle = rows[(rows.policy == "oracle") & (rows.estimator == "truth")
                  & (rows.metric == "incremental_cost")]
    assert (oracle.value <= 0.1 + 1e-9).all()  # the oracle allocates at the nominal budget


def test_off_by_default_and_the_rows_keep_their_columns():
    assert MainSuiteConfig().spend_holdout_fraction == 0.0
    rows = run(MainSuiteConfig(**SMALL), seed=0, progress=False)
    assert "internal_budget_per_user" not in rows.columns


@pytest.mark.parametrize("fraction", [-0.1, 0.9, True, "half", 0.01])
def test_bad_fraction_names_the_field(fraction):
    with pytest.raises(ValueError, match="spend_holdout_fraction"):
        MainSuiteConfig(**SMALL, spend_holdout_fraction=fraction)

