"""The world registry (simulators.sources): literature worlds as `world=` configs, drawn with
truth, reaching the suites that nest a source; published results keep their config hash."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from experiments import suites as registry
from experiments.run import plan
from experiments.store import config_hash, flatten
from simulators.hillstrom_world import HillstromWorldConfig
from simulators.nie_wager import NieWagerConfig
from simulators.sources import SOURCES, SourceConfig, draw_source

REPO = Path(__file__).resolve().parents[1]
WORLD_FILES = sorted(p.stem for p in (REPO / "conf" / "world").glob("*.yaml")
                     if p.read_text().startswith("# @package _global_"))


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def test_every_published_suite_keeps_its_config_hash() -> None:
    """The committed results are the code's: each default suite's full-size job is stored under
    the hash its config has today (a field added with OMIT_AT_DEFAULT, like ``source``, must not
    move it)."""
    store = REPO / "results" / "store"
    for name in registry.available():
        suite = registry.load(name)
        if not suite.is_published:
            continue
        chash = config_hash(name, suite.full_config())
        assert (store / name / chash).is_dir(), (name, chash)


def test_source_is_out_of_the_hash_while_synthetic_and_only_the_active_world_counts() -> None:
    suite = registry.load("learners")
    base = suite.full_config()
    assert "source" not in flatten(base)
    nw = dataclasses.replace(base, source=SourceConfig(name="nie_wager"))
    assert flatten(nw)["source"] == {"name": "nie_wager", "logging": "native",
                                     "nie_wager": flatten(NieWagerConfig())}
    other = dataclasses.replace(nw.source, hillstrom=HillstromWorldConfig(cost_per_email=0.3))
    assert config_hash("learners", nw) == config_hash(
        "learners", dataclasses.replace(base, source=other))
    setup_b = dataclasses.replace(nw.source, nie_wager=NieWagerConfig(setup="B"))
    assert config_hash("learners", nw) != config_hash(
        "learners", dataclasses.replace(base, source=setup_b))


def test_a_learner_name_is_hashed_by_what_it_stands_for(monkeypatch) -> None:
    """The learners and selection suites hold learner *names*; ``hashed_references`` puts their
    definitions into the job hash (not into the stored ``cfg.*`` columns), so redefining a name
    (e.g. the library default heads behind ``default``) gives new jobs instead of leaving old
    results under an unchanged hash. Names the config does not list do not count."""
    from estimators.heads import HURDLE_HEADS
    from experiments.suites import learners, selection

    base = registry.load("learners").full_config()
    before = config_hash("learners", base)
    assert "references" not in flatten(base)
    monkeypatch.setitem(learners.LEARNER_HEADS, "default", {"learner": "hurdle"})
    assert config_hash("learners", base) != before
    only = dataclasses.replace(base, learners=("zero", "t"), noiseless=())
    kept = config_hash("learners", only)
    monkeypatch.setitem(learners.LEARNER_HEADS, "default", {"learner": "x"})
    assert config_hash("learners", only) == kept  # "default" is not in this job

    sel = registry.load("selection").full_config()
    before = config_hash("selection", sel)
    monkeypatch.setitem(selection.CANDIDATES, "default", (HURDLE_HEADS.value, HURDLE_HEADS.cost))
    assert config_hash("selection", sel) != before


@pytest.mark.parametrize(("field", "value"), [("name", "nie_wagner"), ("logging", "holdout")])
def test_bad_source_values_name_the_field(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"source.{field}"):
        SourceConfig(**{field: value})


def test_world_files_reach_the_suites_that_nest_a_source() -> None:
    assert {"nie_wager_a", "nie_wager_b", "nie_wager_c", "nie_wager_d", "hillstrom_semi",
            "lbcf", "obp", "ihdp"} <= set(WORLD_FILES)
    for name in WORLD_FILES:  # every world file composes into a valid source
        (_, config), = plan(_compose(["experiment=learners", f"world={name}"]))
        assert config.source.name in SOURCES, name
    (suite, config), = plan(_compose(["experiment=learners", "world=nie_wager_b"]))
    assert suite.name == "learners"
    assert config.source.name == "nie_wager" and config.source.nie_wager.setup == "B"
    with pytest.raises(ValueError, match="does not use a source config"):
        plan(_compose(["experiment=pacing", "world=nie_wager_a"]))
    with pytest.raises(ValueError, match="not the default benchmark"):
        plan(_compose(["world=hillstrom_semi"]))


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_registered_world_draws_a_validated_log_with_truth(name: str) -> None:
    source = SourceConfig(name=name, logging=SOURCES[name].loggings[0])
    n_actions = source.n_actions
    native = draw_source(jax.random.key(0), source, 300)
    uniform = draw_source(jax.random.key(0), source, 300, logging="uniform")
    for log in (native, uniform):
        assert log.n == 300 and log.n_actions == n_actions and log.truth is not None
        assert np.asarray(log.truth.mu_value).shape == (300, n_actions)
    np.testing.assert_allclose(uniform.action_prob, 1.0 / n_actions)
    again = draw_source(jax.random.key(0), source, 300)
    np.testing.assert_array_equal(native.value, again.value)
    assert SOURCES[name].reference  # the page's published-figure text
    for logging in set(("native", "uniform")) - set(SOURCES[name].loggings):
        with pytest.raises(ValueError, match="source.logging"):
            SourceConfig(name=name, logging=logging)
    with pytest.raises(ValueError, match="logging"):
        draw_source(jax.random.key(0), source, 300, logging="greedy")


def test_learners_suite_runs_on_a_world_without_cost() -> None:
    """Nie & Wager B: value head only (no cost head, no budgeted policy: nothing to spend), and
    a learner that models the effect beats the zero-effect baseline on truth."""
    suite = registry.load("learners")
    cfg = suite.make_config({"ns": [1000], "n_eval": 2000, "learners": ["zero", "t"],
                             "n_rank_bins": 5, "stability_max_n": 0},
                            {"source": {"name": "nie_wager", "nie_wager": {"setup": "B"}}},
                            compact=True)
    rows = suite.rows(cfg, seeds=[0], progress=False)
    assert set(rows.world) == {"nie_wager_B"} and set(rows.logging) == {"native"}
    assert "cost" not in set(rows["head"])
    assert not rows["head"].str.startswith("policy@").any()
    pehe = rows[rows.metric == "pehe"].set_index("learner")["value"]
    assert pehe["t"] < 0.5 * pehe["zero"]


def test_ope_suite_on_a_literature_world_is_unbiased_against_its_truth() -> None:
    """Nie & Wager A under its own propensity e(x) in [0.1, 0.9]: IPS and DR of the offer-1
    target are unbiased against each log's exact value (|bias| within 4 s.e. over replicates);
    no cost outcome on a world without cost."""
    suite = registry.load("ope")
    cfg = suite.make_config({"ns": [400], "n_replicates": 60, "n_train": 2000,
                             "n_reference": 5000, "targets": ["offer_1"], "chunk": 60},
                            {"source": {"name": "nie_wager"}, "ope": {"estimators": ["ips",
                                                                                      "dr"]}},
                            compact=True)
    rows = suite.rows(cfg, seeds=[0], progress=False)
    assert set(rows.outcome) == {"value"} and set(rows.logging) == {"native"}
    wide = rows.pivot_table(index="estimator", columns="metric", values="value")
    assert (wide.bias.abs() <= 4 * wide.bias_se).all(), wide[["bias", "bias_se"]]


def test_allocation_suite_on_the_hillstrom_world_and_not_on_a_world_without_cost() -> None:
    suite = registry.load("allocation")
    cfg = suite.make_config({"n_train": 2000, "n_eval": 1000, "budget_levels": [0.1],
                             "constraints": []}, {"source": {"name": "hillstrom"}},
                            compact=True)
    rows = suite.rows(cfg, seeds=[0], progress=False)
    free = rows[rows.constraint == "none"].pivot_table(index="policy", columns="metric",
                                                       values="value")
    assert free.loc["oracle", "regret"] == 0.0
    assert free.loc["oracle", "incremental_cost"] <= 0.1 + 1e-9
    assert (free.loc[free.incremental_cost <= 0.1 + 1e-9, "regret"] >= -1e-9).all()
    with pytest.raises(ValueError, match="source.name"):
        suite.make_config(groups={"source": {"name": "nie_wager"}})


def test_ihdp_world_relogs_the_rows_by_a_randomised_trial() -> None:
    """Each drawn row's outcome is the replication's simulated potential outcome of the drawn
    arm: the mean of (y - mu) per arm is the replication's noise, near 0 within 4 s.e."""
    log = draw_source(jax.random.key(3), SourceConfig(name="ihdp", logging="uniform"), 20_000)
    mu = np.asarray(log.truth.mu_value)[np.arange(log.n), log.action]
    resid = log.value - mu
    for a in (0, 1):
        r = resid[log.action == a]
        assert abs(r.mean()) <= 4 * r.std(ddof=1) / np.sqrt(len(r)), a
    with pytest.raises(ValueError, match="propensity is unknown"):
        draw_source(jax.random.key(0), SourceConfig(name="ihdp", logging="uniform"), 10,
                    logging="native")


def test_report_has_a_page_per_world_with_our_jobs_on_it(tmp_path) -> None:
    import pandas as pd

    from experiments.report import write_report
    from experiments.store import ResultStore

    suite = registry.load("learners")
    cfg = suite.make_config(groups={"source": {"name": "nie_wager"}}, compact=True)
    rows = pd.DataFrame({"world": ["nie_wager_A"], "logging": ["native"], "n": [500],
                         "learner": ["t"], "head": ["value"], "metric": ["pehe"],
                         "value": [0.3], "seed": [0]})
    store = ResultStore(tmp_path / "store")
    chash = config_hash("learners", cfg)
    store.write("learners", cfg, 0, rows,
                command="python -m experiments.run experiment=learners world=nie_wager_a")
    text = write_report(store, tmp_path / "REPORT.md").read_text()
    assert "## Worlds" in text
    for name in SOURCES:
        assert f"### world: {name}" in text
    assert f"[learners on world=nie_wager_a](#learners-{chash})" in text
    assert "`world=hillstrom_semi`" in text
