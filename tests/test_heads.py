"""Heads from typed config (``HeadConfig``/``HeadsConfig`` -> ``make_learner``/``make_heads``), the
one learner protocol, and scoring only the supported actions of a partially logged world."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from estimators.bart import BART
from estimators.base import MLP, Logistic, Ridge
from estimators.gbm import LightGBM
from estimators.heads import (
    HURDLE_HEADS,
    HeadConfig,
    HeadsConfig,
    UpliftHeads,
    UpliftLearner,
    fit_learner_batch,
    make_heads,
    make_learner,
)
from estimators.hurdle import HurdleLearner
from estimators.tarnet import TARNet, TARNetConfig
from estimators.uplift import DRLearner, RLearner, SLearner, TLearner, XLearner
from simulators import LoggingConfig, simulate

SMALL = 1_000  # rows of the fixture log used for the (learner, base) grid


@pytest.fixture(scope="module")
def small_log(uniform_log):
    return uniform_log.subset(np.arange(SMALL))


@pytest.fixture(scope="module")
def holdout3(world_params, world_config):
    """Treatment/holdout on offer 3: offers 1, 2, 4 are never used by the logger."""
    return simulate(jax.random.key(31), world_params, world_config, 2_000,
                    LoggingConfig(kind="holdout", offer=3))


def test_default_heads_config_is_the_weighted_tarnet_value_and_hurdle_cost(uniform_log,
                                                                            world_config):
    """HeadsConfig() is the benchmark-chosen pair: value = a five-net TARNet ensemble with
    inverse-propensity row weights, cost = HurdleLearner(Logistic(1), amount="constant") with
    its per-arm fits weighted by 1 / e_a(x); the same numbers as the learners built by hand to
    1e-12 (the same computation). The previous default, the unweighted hurdle pair, stays
    available as HURDLE_HEADS (``learner=hurdle``)."""
    log = uniform_log.subset(np.arange(2 * SMALL))
    kw = dict(action_prob=log.action_prob, n_actions=world_config.n_actions)
    ours = make_heads(HeadsConfig())
    value = TARNet(config=TARNetConfig(weight_by_propensity=True, n_members=5))
    cost = HurdleLearner(prob_base=Logistic(alpha=1.0), amount_base=Ridge(alpha=1.0),
                         amount="constant", weight_by_propensity=True)
    assert ours.value == value and ours.cost == cost  # unfitted: same fields
    ours.fit(log.x, log.action, log.value, log.cost, **kw)
    ref = UpliftHeads(value=value, cost=cost).fit(log.x, log.action, log.value, log.cost, **kw)
    for got, want in zip((*ours.predict_tau(log.x), *ours.predict_mu(log.x)),
                         (*ref.predict_tau(log.x), *ref.predict_mu(log.x)), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12, atol=1e-12)
    hurdle = make_heads(HURDLE_HEADS)
    assert hurdle.value == HurdleLearner(prob_base=Logistic(alpha=1.0),
                                         amount_base=Ridge(alpha=1.0), amount="log")
    assert hurdle.cost == HurdleLearner(prob_base=Logistic(alpha=1.0),
                                        amount_base=Ridge(alpha=1.0), amount="constant")
    with pytest.raises(ValueError, match="action_prob"):  # both default heads need propensities
        make_heads(HeadsConfig()).fit(log.x, log.action, log.value, log.cost,
                                      n_actions=world_config.n_actions)


def test_make_learner_maps_config_fields_onto_the_learners():
    def mk(**kw):
        return make_learner(HeadConfig(**kw))

    assert mk() == TLearner(base=Ridge(alpha=1.0))
    assert mk(learner="s", base="logistic", alpha=2.0, interactions=True) == SLearner(
        base=Logistic(alpha=2.0), interactions=True)
    assert mk(learner="x", alpha=3.0) == XLearner(base=Ridge(alpha=3.0), final=Ridge(alpha=3.0))
    assert mk(learner="dr", base="logistic", alpha=0.5, n_folds=5, seed=9) == DRLearner(
        base=Logistic(alpha=0.5), final=Ridge(alpha=0.5), n_folds=5, seed=9)
    assert mk(learner="r", alpha=4.0, n_folds=3, seed=2) == RLearner(
        base=Ridge(alpha=4.0), alpha=4.0, n_folds=3, seed=2)
    assert mk(base="mlp", seed=4, mlp={"hidden": [8], "max_epochs": 3}) == TLearner(
        base=MLP(hidden=(8,), max_epochs=3, seed=4))
    # the head's seed is the one seed of its nested settings
    assert mk(base="bart", seed=5, bart=BART(n_trees=7, seed=1)).base == BART(n_trees=7, seed=5)
    assert mk(learner="tarnet", seed=6).config == TARNetConfig(seed=6)
    assert mk(learner="hurdle", alpha=2.0) == HurdleLearner(
        prob_base=Logistic(alpha=2.0), amount_base=Ridge(alpha=2.0), amount="log")
    assert mk(learner="hurdle", base="lightgbm", hurdle_amount="constant") == HurdleLearner(
        prob_base=LightGBM(), amount_base=LightGBM(), amount="constant")


# every meta-learner on the linear bases; the flexible bases (tiny settings) on the T-learner,
# the hurdle and DR (cross-fitting through the host path of a non-traceable base)
TINY = dict(mlp=MLP(hidden=(8,), max_epochs=3), bart=BART(n_trees=5, n_burn=5, n_draws=5),
            lightgbm=LightGBM(n_estimators=5), tarnet=TARNetConfig(trunk=(8,), head=(4,),
                                                                   max_epochs=2))
COMBINATIONS = [(learner, base) for learner in ("t", "s", "x", "dr", "r", "hurdle")
                for base in ("ridge", "logistic")]
COMBINATIONS += [("t", "mlp"), ("t", "lightgbm"), ("dr", "lightgbm"), ("hurdle", "lightgbm"),
                 ("tarnet", "ridge"),
                 pytest.param("t", "bart", marks=pytest.mark.slow),
                 pytest.param("hurdle", "bart", marks=pytest.mark.slow)]


@pytest.mark.parametrize("learner, base", COMBINATIONS)
def test_every_learner_and_base_builds_and_fits(learner, base, small_log, world_config):
    """Each combination fits a small world log (labels in [0, 1] for the logistic base: the
    purchase indicator) and honours the learner contract: (n, K+1) with column 0 zero,
    mu - mu_0 = tau, every action supported on a uniform log."""
    log = small_log
    label = (np.asarray(log.value) > 0).astype(np.float64) if base == "logistic" else log.cost
    if learner == "hurdle":
        label = np.asarray(log.value)  # sparse, >= 0: the label a hurdle is for
    cfg = HeadConfig(learner=learner, base=base, **TINY)
    model = make_learner(cfg)
    assert isinstance(model, UpliftLearner)
    model.fit(log.x, log.action, label, log.action_prob, world_config.n_actions)
    tau, mu = np.asarray(model.predict_tau(log.x)), np.asarray(model.predict_mu(log.x))
    assert tau.shape == mu.shape == (SMALL, world_config.n_actions)
    assert np.isfinite(tau).all() and np.isfinite(mu).all()
    np.testing.assert_array_equal(tau[:, 0], 0.0)
    np.testing.assert_allclose(mu - mu[:, :1], tau, atol=1e-10)
    np.testing.assert_array_equal(model.supported_actions_, np.arange(world_config.n_actions))


@pytest.mark.parametrize("change, message", [
    (dict(learner="q"), r"^HeadConfig.learner: unknown learner 'q'\. Fix: use one of "
                        r"\['t', 's', 'x', 'dr', 'r', 'hurdle', 'tarnet', 'bcf'\]\.$"),
    (dict(base="tree"), r"^HeadConfig.base: unknown base model 'tree'\. Fix: use one of "
                        r"\['ridge', 'logistic', 'mlp', 'bart', 'lightgbm'\]\.$"),
    (dict(alpha=0.0), r"^HeadConfig.alpha: must be a finite number > 0, got 0\.0"),
    (dict(alpha=-1.0), r"^HeadConfig.alpha: "),
    (dict(alpha=float("nan")), r"^HeadConfig.alpha: "),
    (dict(alpha=True), r"^HeadConfig.alpha: "),
    (dict(alpha="1"), r"^HeadConfig.alpha: "),
    (dict(n_folds=1), r"^HeadConfig.n_folds: must be an int >= 2, got 1\. Fix: "),
    (dict(n_folds=2.0), r"^HeadConfig.n_folds: "),
    (dict(seed=-1), r"^HeadConfig.seed: must be an int >= 0"),
    (dict(seed=0.5), r"^HeadConfig.seed: "),
    (dict(interactions="yes"), r"^HeadConfig.interactions: must be a bool"),
    (dict(mlp={"hidden": ()}), r"^MLP.hidden: need at least one layer"),
    (dict(mlp={"hiden": (8,)}), r"^HeadConfig.mlp: unknown keys \['hiden'\]"),
    (dict(mlp="big"), r"^HeadConfig.mlp: expected a MLP"),
    (dict(bart={"n_trees": 0}), r"^BART.n_trees: must be an integer >= 1"),
    (dict(hurdle_amount="gamma"), r"^HeadConfig.hurdle_amount: unknown amount model"),
])
def test_bad_head_config_is_a_value_error_naming_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        HeadConfig(**change)


def test_heads_config_accepts_mappings_and_rejects_other_values():
    cfg = HeadsConfig(value={"learner": "dr", "alpha": 10.0}, cost=HeadConfig(learner="x"))
    assert cfg.value == HeadConfig(learner="dr", alpha=10.0)
    assert dataclasses.replace(cfg, cost={"base": "mlp"}).cost == HeadConfig(base="mlp")
    with pytest.raises(ValueError, match=r"^HeadsConfig.value: unknown keys \['lerner'\]"):
        HeadsConfig(value={"lerner": "t"})
    with pytest.raises(ValueError, match=r"^HeadsConfig.cost: expected a HeadConfig"):
        HeadsConfig(cost="t")
    with pytest.raises(ValueError, match=r"^config: expected a HeadsConfig"):
        make_heads(HeadConfig())
    with pytest.raises(ValueError, match=r"^config: expected a HeadConfig"):
        make_learner(HeadsConfig())
    heads = make_heads(HeadsConfig(value=HeadConfig(learner="dr"), cost=HeadConfig(learner="r")))
    assert isinstance(heads.value, DRLearner) and isinstance(heads.cost, RLearner)


def test_one_protocol_shared_with_the_plugins():
    from experiments.plugins import EconMLLearner, as_learner
    from experiments.plugins import UpliftLearner as PluginProtocol

    assert PluginProtocol is UpliftLearner
    for learner in (TLearner(), SLearner(), XLearner(), DRLearner(), RLearner()):
        assert isinstance(learner, UpliftLearner) and as_learner(learner) is learner

    class Effect:
        def fit(self, *a, **k):
            return self

        def effect(self, x, T0=0, T1=1):
            return np.zeros(len(x))

    assert isinstance(as_learner(Effect()), EconMLLearner)
    assert not isinstance(object(), UpliftLearner)


def test_heads_score_only_the_actions_both_heads_support(holdout3, world_config):
    """A holdout log on offer 3: both heads support [0, 3]; scoring every action is the
    learners' ValueError, scoring ``heads.supported_actions_`` gives those columns, equal to the
    learners' own. The supported set is the intersection of the two heads'."""
    log = holdout3
    k1 = world_config.n_actions
    heads = make_heads(HeadsConfig()).fit(log.x, log.action, log.value, log.cost,
                                          action_prob=log.action_prob, n_actions=k1)
    np.testing.assert_array_equal(heads.supported_actions_, [0, 3])
    with pytest.raises(ValueError, match=r"actions \[1, 2, 4\] were never logged"):
        heads.predict_mu(log.x)
    sup = heads.supported_actions_
    mu_v, mu_c = heads.predict_mu(log.x, actions=sup)
    tau_v, tau_c = heads.predict_tau(log.x, actions=sup)
    np.testing.assert_array_equal(mu_v, heads.value.predict_mu(log.x, actions=sup))
    np.testing.assert_array_equal(tau_c, heads.cost.predict_tau(log.x, actions=sup))
    assert np.asarray(mu_c).shape == np.asarray(tau_v).shape == (len(log.x), 2)
    np.testing.assert_array_equal(np.asarray(tau_v)[:, 0], 0.0)
    # heads fitted on different supports: the intersection
    value = TLearner().fit(log.x, np.where(log.action == 3, 1, log.action), log.value,
                           n_actions=k1)
    split = UpliftHeads(value=value, cost=TLearner().fit(log.x, log.action, log.cost,
                                                         n_actions=k1))
    np.testing.assert_array_equal(value.supported_actions_, [0, 1])
    np.testing.assert_array_equal(split.supported_actions_, [0])


def test_heads_actions_with_recalibration_and_with_a_plain_plugin(uniform_log):
    """With every action supported, ``actions=`` selects columns of the recalibrated tau; a
    recalibrated head with unsupported actions refuses ``actions=`` (the recalibrator maps all K
    offer columns). A plug-in without ``supported_actions_`` supports every action it predicts
    and is sliced."""
    log = uniform_log

    class Double:
        def transform(self, tau):
            return 2.0 * np.asarray(tau)

    class Plain:  # the minimal protocol: fit and predict_tau (and predict_mu here)
        def fit(self, x, action, reward, action_prob=None, n_actions=None):
            self.n_actions_ = n_actions
            return self

        def predict_tau(self, x):
            return np.tile(np.arange(self.n_actions_, dtype=float), (len(x), 1))

        predict_mu = predict_tau

    heads = UpliftHeads(value=Plain(), cost=TLearner(), cost_recalibration=Double())
    heads.fit(log.x, log.action, log.value, log.cost, n_actions=log.action_prob.shape[1])
    k1 = log.action_prob.shape[1]
    np.testing.assert_array_equal(heads.supported_actions_, np.arange(k1))
    full_v, full_c = heads.predict_tau(log.x)
    tau_v, tau_c = heads.predict_tau(log.x, actions=[3, 0])
    np.testing.assert_array_equal(tau_v, np.asarray(full_v)[:, [3, 0]])
    np.testing.assert_array_equal(tau_c, np.asarray(full_c)[:, [3, 0]])
    np.testing.assert_allclose(full_c, 2.0 * np.asarray(heads.cost.predict_tau(log.x)),
                               atol=1e-12)
    partial = UpliftHeads(value=TLearner(), cost=TLearner(), value_recalibration=Double())
    partial.fit(log.x, np.minimum(log.action, 1), log.value, log.cost, n_actions=k1)
    with pytest.raises(ValueError, match=r"^value_recalibration: maps all K offer columns, "
                                         r"but the value head never fitted actions \[2, 3, 4\]"):
        partial.predict_tau(log.x, actions=[0, 1])
    with pytest.raises(ValueError, match=r"not fitted"):
        UpliftHeads(value=Plain(), cost=TLearner()).supported_actions_  # noqa: B018


def test_fit_batch_equals_fitting_each_seed(uniform_log, holdout3, world_config):
    """The protocol's seed-batch path: ``UpliftHeads.fit_batch`` over three logs (two row
    counts, and a holdout log with other supported actions, so three groups) gives each seed
    the heads ``fit`` gives it alone, to 1e-10; a learner without ``fit_batch`` (DR) goes
    through deep copies; the unfitted template stays unfitted; a short seed axis is a
    ValueError naming the argument."""
    logs = [uniform_log.subset(np.arange(800)), uniform_log.subset(np.arange(800, 1_600)),
            holdout3.subset(np.arange(800))]
    k1 = world_config.n_actions
    template = make_heads(HURDLE_HEADS)  # the pair whose learners have batched fits
    batched = template.fit_batch([d.x for d in logs], [d.action for d in logs],
                                 [d.value for d in logs], [d.cost for d in logs],
                                 action_prob=[d.action_prob for d in logs], n_actions=k1)
    assert template.value.n_actions_ is None
    for d, heads in zip(logs, batched, strict=True):
        alone = make_heads(HURDLE_HEADS).fit(d.x, d.action, d.value, d.cost,
                                             action_prob=d.action_prob, n_actions=k1)
        np.testing.assert_array_equal(heads.supported_actions_, alone.supported_actions_)
        sup = alone.supported_actions_
        for got, ref in zip(heads.predict_tau(d.x, sup), alone.predict_tau(d.x, sup),
                            strict=True):
            np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-10, atol=1e-10)
    ridge_t = TLearner(base=Ridge())
    for learner in (ridge_t, DRLearner(base=Ridge(), final=Ridge())):
        fitted = fit_learner_batch(learner, [d.x for d in logs[:2]],
                                   [d.action for d in logs[:2]], [d.value for d in logs[:2]],
                                   action_prob=[d.action_prob for d in logs[:2]], n_actions=k1)
        for d, one in zip(logs[:2], fitted, strict=True):
            ref = dataclasses.replace(learner).fit(d.x, d.action, d.value,
                                                   action_prob=d.action_prob, n_actions=k1)
            np.testing.assert_allclose(np.asarray(one.predict_tau(d.x)),
                                       np.asarray(ref.predict_tau(d.x)), rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="action"):
        ridge_t.fit_batch([d.x for d in logs], [d.action for d in logs[:2]],
                          [d.value for d in logs], n_actions=k1)
