"""LoggedData validation: every malformed input fails with a ValueError naming the field."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simulators import LoggedData


def _fields(log: LoggedData) -> dict:
    return {f.name: getattr(log, f.name) for f in dataclasses.fields(log)}


def _with(log: LoggedData, **changes) -> LoggedData:
    return LoggedData(**{**_fields(log), **changes})


def test_valid_log_round_trips_to_pandas(uniform_log):
    df = uniform_log.to_pandas()
    assert len(df) == uniform_log.n
    np.testing.assert_allclose(df["pscore"], uniform_log.pscore)
    assert {"x_0", "prob_4", "mu_value_4", "other_1", "response_type"} <= set(df.columns)


@pytest.mark.parametrize(
    ("field", "make_bad"),
    [
        ("x", lambda d: d.x[:, 0]),
        ("x", lambda d: np.where(np.arange(d.n)[:, None] == 3, np.nan, d.x)),
        ("value", lambda d: d.value[:-1]),
        ("value", lambda d: np.where(np.arange(d.n) == 5, np.inf, d.value)),
        ("cost", lambda d: np.full(d.n, np.nan)),
        ("action", lambda d: d.action.astype(np.float64)),
        ("action", lambda d: np.where(np.arange(d.n) == 0, d.eligible.shape[1], d.action)),
        ("action", lambda d: np.where(np.arange(d.n) == 0, -1, d.action)),
        ("eligible", lambda d: d.eligible.astype(np.int64)),
        ("eligible", lambda d: np.concatenate([~d.eligible[:, :1], d.eligible[:, 1:]], 1)),
        ("eligible", lambda d: d.eligible[:, :1]),
        ("action_prob", lambda d: d.action_prob[:, :-1]),
        ("action_prob", lambda d: d.action_prob * 1.1),
        ("action_prob", lambda d: np.where(np.arange(d.n)[:, None] == 2, np.nan, d.action_prob)),
        ("other_actions", lambda d: d.other_actions[:10]),
        ("face_value", lambda d: d.face_value + 1.0),
        ("face_value", lambda d: np.array(["free"] * d.face_value.shape[0])),
        ("other_actions", lambda d: np.where(_row(d, 3)[:, None], np.nan, d.other_actions)),
        ("other_actions", lambda d: np.where(_row(d, 3)[:, None], -1, d.other_actions)),
        ("other_actions", lambda d: d.other_actions + 0.5),
        ("other_actions", lambda d: np.full(d.other_actions.shape, "yes")),
        ("segment", lambda d: np.where(_row(d, 4), -5, d.segment).astype(np.int32)),
        ("segment", lambda d: np.where(_row(d, 4), 3, d.segment).astype(np.int32)),
        ("period", lambda d: np.where(_row(d, 5), -1, d.period).astype(np.int32)),
        ("redemption_lag", lambda d: np.where(_row(d, 6), -2, d.redemption_lag).astype(np.int32)),
        ("cost", lambda d: np.where(_row(d, 7), -1.0, d.cost)),
        ("action_prob", lambda d: d.action_prob.astype(str)),
    ],
)
def test_malformed_field_raises_naming_it(uniform_log, field, make_bad):
    with pytest.raises(ValueError, match=rf"LoggedData\.{field}\b.*Fix:"):
        _with(uniform_log, **{field: make_bad(uniform_log)})


def _row(log: LoggedData, i: int) -> np.ndarray:
    return np.arange(log.n) == i


@pytest.mark.parametrize(
    ("field", "make_bad"),
    [
        ("response_type", lambda t: t.response_type[:10]),
        ("response_type", lambda t: t.response_type.astype(np.float64)),
        ("response_type", lambda t: np.where(np.arange(t.response_type.shape[0]) == 2, 4,
                                             t.response_type)),
        ("response_type", lambda t: np.where(np.arange(t.response_type.shape[0]) == 2, -1,
                                             t.response_type)),
        ("mu_value", lambda t: t.mu_value.astype(str)),
        ("mu_cost", lambda t: np.where(t.mu_cost > 0, np.nan, t.mu_cost)),
    ],
)
def test_malformed_truth_raises_naming_it(uniform_log, field, make_bad):
    truth = uniform_log.truth._replace(**{field: make_bad(uniform_log.truth)})
    with pytest.raises(ValueError, match=rf"LoggedData\.truth\.{field}\b.*Fix:"):
        _with(uniform_log, truth=truth)


def test_boundary_values_are_valid(uniform_log):
    """The edges of each range are legal: -1 = never redeemed, period 0, zero cost, every
    lifecycle segment, float-coded 0/1 concurrent programs, real data without truth."""
    n = uniform_log.n
    ok = _with(uniform_log, redemption_lag=np.full(n, -1, np.int32), period=np.zeros(n, np.int32),
               segment=(np.arange(n) % 3).astype(np.int32),
               other_actions=uniform_log.other_actions.astype(np.float64), truth=None)
    assert ok.n == n
    assert (uniform_log.redemption_lag >= -1).all() and (uniform_log.redemption_lag == -1).any()


def test_zero_propensity_for_logged_action_is_rejected(uniform_log):
    prob = np.array(uniform_log.action_prob, copy=True)
    row = 7
    a = uniform_log.action[row]
    other = 0 if a != 0 else 1
    uniform_log_elig = np.array(uniform_log.eligible, copy=True)
    uniform_log_elig[row, other] = True
    prob[row, other] += prob[row, a]
    prob[row, a] = 0.0
    with pytest.raises(ValueError, match=r"action_prob.*pscore must lie in \(0, 1\]"):
        _with(uniform_log, action_prob=prob, eligible=uniform_log_elig)


def test_ineligible_action_and_mass_on_ineligible_are_rejected(uniform_log):
    elig = np.array(uniform_log.eligible, copy=True)
    row = int(np.flatnonzero(uniform_log.action > 0)[0])
    elig[row, uniform_log.action[row]] = False
    with pytest.raises(ValueError, match=r"LoggedData\.action: row \d+ logged action"):
        _with(uniform_log, eligible=elig)
    prob = np.array(uniform_log.action_prob, copy=True)
    ineligible = np.argwhere(~uniform_log.eligible)
    assert len(ineligible), "the default world must have ineligible (user, offer) pairs"
    r, c = ineligible[0]
    prob[r, c] = 0.1
    prob[r] /= prob[r].sum()
    with pytest.raises(ValueError, match=r"action_prob: puts mass on ineligible"):
        _with(uniform_log, action_prob=prob)


def test_truth_shape_and_confounded_pscore(uniform_log):
    bad_truth = uniform_log.truth._replace(mu_cost=uniform_log.truth.mu_cost[:, :2])
    with pytest.raises(ValueError, match=r"truth\.mu_cost"):
        _with(uniform_log, truth=bad_truth)
    no_prop = _with(uniform_log, action_prob=None)
    with pytest.raises(ValueError, match=r"action_prob: this log recorded no propensities"):
        _ = no_prop.pscore


def test_subset_keeps_truth_and_validates(uniform_log):
    sub = uniform_log.subset(uniform_log.segment == 2)
    assert sub.n == int((uniform_log.segment == 2).sum())
    np.testing.assert_array_equal(sub.truth.mu_value,
                                  uniform_log.truth.mu_value[uniform_log.segment == 2])
