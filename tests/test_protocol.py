"""The one way to configure and run a suite: every built-in suite follows the Suite protocol, the
global groups reach every suite that nests their config, compact is a preset (never inferred by
comparing with defaults), every option of every conf/ group runs the main job, seeds derive their
streams one way, and results files get ordinary permissions."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from experiments import suites as registry
from experiments.configs import GROUPS
from experiments.run import execute, plan
from experiments.store import ResultStore, atomic_write
from experiments.suites.base import Suite, group_fields, stream, stream_id

REPO = Path(__file__).resolve().parents[1]


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def test_every_builtin_suite_follows_the_protocol():
    for name in registry.available():
        suite = registry.load(name)
        assert isinstance(suite, Suite) and suite.name == name
        assert dataclasses.is_dataclass(suite.config_class)
        full, compact = suite.full_config(), suite.compact_config()
        assert isinstance(compact, suite.config_class) and isinstance(full, suite.config_class)
        assert isinstance(suite.key_columns, tuple) and suite.key_columns
        assert suite.default_preset in ("full", "compact")
        # no suite keeps a second seed axis of its own
        assert "n_seeds" not in {f.name for f in dataclasses.fields(suite.config_class)}, name
        assert callable(suite.run), f"{name} has no run"
    with pytest.raises(ValueError, match="key_columns"):
        Suite(name="x", config_class=registry.load("horizons").config_class, run=print,
              key_columns=())


def test_a_module_without_suite_is_rejected_clearly():
    with pytest.raises(ValueError, match="SUITE = <a Suite subclass>"):
        registry.load("experiments.configs")


def test_compact_is_a_preset_and_explicit_values_always_win():
    """The old rule skipped an explicit value equal to the full-size default under compact=true
    (so n_seeds=500 silently ran 100); a set value now always applies over the preset."""
    (suite, cfg), = plan(_compose(["experiment=ope", "experiment.compact=true",
                                   "experiment.params.n_replicates=500"]))
    compact = suite.config_class.compact()
    assert compact.n_replicates != 500 and cfg.n_replicates == 500
    assert cfg.ns == compact.ns and cfg.n_train == compact.n_train
    (_, full), = plan(_compose(["experiment=ope"]))
    assert full == suite.config_class()


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_global_groups_reach_every_suite_that_nests_them(group):
    override, read = {
        "world": ("world.n_binary=3", lambda c: c.world.n_binary == 3),
        "logging": ("logging.epsilon=0.3", lambda c: c.logging.epsilon == 0.3),
        "learner": ("learner.cost.alpha=7.0", lambda c: c.learner.cost.alpha == 7.0),
        "policy": ("policy.budget_per_user=0.7", lambda c: c.policy.budget_per_user == 0.7),
        "ope": ("ope.ci_level=0.8", lambda c: c.ope.ci_level == 0.8),
        "source": ("source.logging=uniform", lambda c: c.source.logging == "uniform"),
    }[group]
    nesting = [n for n in registry.available() if group in group_fields(
        registry.load(n).config_class)]
    assert nesting, f"no suite nests {group}"
    for name in nesting:
        (suite, cfg), = plan(_compose([f"experiment={name}", override]))
        assert read(cfg), (name, override)
        default = suite.config_class()
        # only that value moved: the suite's own defaults for the rest of the config stand
        assert dataclasses.replace(cfg, **{group: getattr(default, group)}) == default
    if group == "source":  # a literature world runs with one suite (tests/test_sources.py)
        return
    default_plan = {s.name: c for s, c in plan(_compose([override]))}
    for name in nesting:
        if name in default_plan:
            assert read(default_plan[name]), (name, "default benchmark")


# the holdout logger in the default run; every other option is slow (make slow)
_QUICK = {"logging=holdout"}  # the supported-actions path; the others are `-m slow`


def _group_options() -> list:
    out = []
    for group in sorted(GROUPS):
        for path in sorted((REPO / "conf" / group).glob("*.yaml")):
            if path.read_text().startswith("# @package _global_"):
                continue  # a literature world: not the main job's (tests/test_sources.py)
            option = f"{group}={path.stem}"
            out.append(option if option in _QUICK else pytest.param(option,
                                                                  marks=pytest.mark.slow))
    return out


@pytest.mark.parametrize("option", _group_options())
def test_every_option_of_every_group_runs_the_main_job(option, tmp_path):
    """Each conf/ group option composes, plans and runs the main job end to end (tiny logs)."""
    cfg = _compose(["experiment=main", option, "experiment.params.n_train=1500",
                    "experiment.params.n_eval=800", f"store={tmp_path}", "report=false",
                    "write_outputs=false", "progress=false"])
    (written,) = execute(cfg)
    rows = pd.read_parquet(written)
    assert set(rows["estimator"]) >= {"truth"} and np.isfinite(rows["value"]).all()
    learned = rows[(rows.policy == "cost_aware_uplift") & (rows.estimator == "truth")
                   & (rows.metric == "incremental_cost")]["value"].iloc[0]
    assert learned <= 1.5 * max(float(rows["budget_per_user"].iloc[0]), 0.05) + 0.05
    if option == "logging=holdout":  # fitted and scored on the offers the log supports
        assert rows["supported_actions"].iloc[0] == "0,1"


def test_suite_rows_must_carry_their_key_columns(tmp_path):
    broken = dataclasses.replace(registry.load("horizons"), key_columns=("n", "label",
                                                                          "not_there"))
    with pytest.raises(ValueError, match="not_there"):
        broken.check_rows(pd.DataFrame({"n": [1], "label": ["a"], "metric": ["m"],
                                          "value": [1.0], "seed": [0]}))


def test_streams_are_named_reproducible_and_independent():
    a, b = stream(3, "train"), stream(3, "train")
    assert np.array_equal(jax.random.key_data(a), jax.random.key_data(b))
    others = [stream(3, "eval"), stream(4, "train"), stream(3, "train", 2000)]
    for o in others:
        assert not np.array_equal(jax.random.key_data(a), jax.random.key_data(o))
    assert stream_id("train") == stream_id("train") and stream_id(7) == 7
    with pytest.raises(ValueError, match="stream name"):
        stream_id(-1)


def test_results_files_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "REPORT.md"
        atomic_write(path, lambda tmp: Path(tmp).write_text("x"))
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        store = ResultStore(tmp_path / "store")
        from experiments.suites.horizons import HorizonsSuiteConfig

        job = store.write("horizons", HorizonsSuiteConfig(), 0,
                          pd.DataFrame({"metric": ["m"], "value": [1.0]}))
        assert stat.S_IMODE(job.stat().st_mode) == 0o644
        assert stat.S_IMODE((job.parent / "config.json").stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_seeds_range_resolver_and_repeated_seeds():
    cfg = _compose(["experiment=horizons", "seeds=${range:0,4}"])
    assert list(cfg.seeds) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="repeats a seed"):
        execute(_compose(["experiment=horizons", "seeds=[1,1]", "store=/nonexistent/x"]))


def test_a_nullable_suite_field_accepts_null():
    """The schema types ``lag_mean: float | None`` as Optional; ``null`` must reach the config."""
    (_, cfg), = plan(_compose(["experiment=pacing", "experiment.params.lag_mean=null"]))
    assert cfg.lag_mean is None
    with pytest.raises(ValueError, match="n_periods: expected an int"):  # not nullable
        registry.load("pacing").make_config({"n_periods": None})
