"""The shared input checks (:mod:`estimators.checks`): each check's pass and fail cases, the one
message shape ``field (seed s, row i): problem. Fix: fix.``, the tolerance boundaries, and that the
simulators, the decision layer and the estimators reject the same bad probability table with the
same tolerance. Also the dependency rule that makes ``estimators.checks`` the shared bottom layer.
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib
import re

import jax
import numpy as np
import pytest

from estimators import checks
from estimators.calibration import LinearRecalibration, incremental_calibration
from estimators.checks import INELIGIBLE_MASS_ATOL, PSCORE_RTOL, ROW_SUM_ATOL
from policies.exploration import epsilon_mix, explore, propensity_floor, sample_actions
from simulators import LoggedData, policy_truth

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHAPE = re.compile(r"^(?P<field>[\w.\[\]:, ]+?)(?: \((?:seed \d+, )?row \d+\)| \(seed \d+\))?: "
                   r".+\. Fix: .+\.$", re.S)


def _message(call) -> str:
    with pytest.raises(ValueError) as info:
        call()
    msg = str(info.value)
    assert SHAPE.match(msg), msg
    return msg


# ------------------------------------------------------------------------ message shape
def test_fail_and_location_give_the_one_message_shape():
    assert checks.location() == ""
    assert checks.location(row=3) == " (row 3)"
    assert checks.location(seed=2) == " (seed 2)"
    assert checks.location(seed=2, row=3) == " (seed 2, row 3)"
    with pytest.raises(ValueError) as info:
        checks.fail("action_prob", "rows must sum to 1.", "normalise them.", seed=1, row=4)
    assert str(info.value) == (
        "action_prob (seed 1, row 4): rows must sum to 1. Fix: normalise them.")
    with pytest.raises(ValueError) as info:
        checks.fail("budget", "must be >= 0", "pass a non-negative number")
    assert str(info.value) == "budget: must be >= 0. Fix: pass a non-negative number."


def test_tolerances_are_the_documented_values():
    assert (ROW_SUM_ATOL, PSCORE_RTOL, INELIGIBLE_MASS_ATOL) == (1e-6, 1e-6, 1e-6)


# ----------------------------------------------------------------------- shape / finite
def test_check_shape():
    a = checks.check_shape("x", np.zeros((3, 2)), (None, 2), "pass (n, 2)")
    assert a.shape == (3, 2)
    msg = _message(lambda: checks.check_shape("x", np.zeros((3, 4)), (None, 2), "pass (n, 2)"))
    assert msg == "x: expected shape (?, 2), got (3, 4). Fix: pass (n, 2)."
    _message(lambda: checks.check_shape("x", np.zeros(3), (None, 2), "pass (n, 2)"))


def test_check_finite_names_the_first_bad_row_and_seed():
    ok = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(checks.check_finite("x", ok), ok)
    bad = ok.copy()
    bad[2, 1] = np.nan
    assert _message(lambda: checks.check_finite("x", bad)).startswith(
        "x (row 2): contains NaN or infinite entries. Fix:")
    batch = np.zeros((3, 5, 2))
    batch[1, 4, 0] = np.inf
    assert _message(lambda: checks.check_finite("x", batch, batched=True)).startswith(
        "x (seed 1, row 4): contains NaN")
    assert "dtype <U1" in _message(lambda: checks.check_finite("x", np.array(["a"])))


# ------------------------------------------------------------------------------ actions
def test_check_real_bounds_types_and_message():
    assert checks.check_real("f", np.float32(0.5), "fix", low=0.0, high=1.0) == 0.5
    assert checks.check_real("f", 1, "fix", low=0.0, high=1.0) == 1.0  # closed ends by default
    for value, kwargs in ((True, {}), ("1", {}), (float("nan"), {}), (float("inf"), {}),
                          (0.0, dict(low=0.0, low_open=True)), (1.0, dict(high=1.0,
                                                                          high_open=True)),
                          (-0.1, dict(low=0.0))):
        with pytest.raises(ValueError, match=r"^cfg\.f: must be .*Fix: e\.g\. 0\.1\.$"):
            checks.check_real("cfg.f", value, "e.g. 0.1", **kwargs)
    with pytest.raises(ValueError, match=r"in \(0, 1\), got 1\.0"):
        checks.check_real("f", 1.0, "fix", low=0.0, high=1.0, low_open=True, high_open=True)


def test_check_actions():
    np.testing.assert_array_equal(checks.check_actions("action", np.array([0, 2, 1]), 3),
                                  [0, 2, 1])
    assert "is not integer" in _message(
        lambda: checks.check_actions("action", np.array([0.0, 1.0]), 3))
    assert _message(lambda: checks.check_actions("action", np.array([0, 1, 3]), 3)).startswith(
        "action (row 2): value 3 is outside [0, 2]. Fix:")
    assert _message(lambda: checks.check_actions("action", np.array([[0, 1], [-1, 0]]), 3)
                    ).startswith("action (seed 1, row 0): value -1 is outside [0, 2]")


# ----------------------------------------------------------------------------- eligible
def test_check_eligible():
    mask = np.array([[True, False, True], [True, True, True]])
    np.testing.assert_array_equal(checks.check_eligible("eligible", mask, (2, 3)), mask)
    as_int = checks.check_eligible("eligible", mask.astype(np.int64), (2, 3))
    assert as_int.dtype == np.bool_ and (as_int == mask).all()
    assert _message(lambda: checks.check_eligible("eligible", mask, (3, 3))).startswith(
        "eligible: expected shape (3, 3), got (2, 3)")
    assert "dtype int64 is not bool" in _message(
        lambda: checks.check_eligible("eligible", mask.astype(np.int64), (2, 3),
                                      strict_bool=True))
    assert "must be boolean (0/1)" in _message(
        lambda: checks.check_eligible("eligible", np.full((2, 3), 0.5), (2, 3)))
    no_offer_off = mask.copy()
    no_offer_off[1, 0] = False
    msg = _message(lambda: checks.check_eligible("eligible", no_offer_off, (2, 3)))
    assert msg.startswith("eligible: column 0 (no offer) must be True in every row, row 1 has")
    assert "eligible[:, 0] = True" in msg
    # a metric may score rows without no-offer (it only reads the offers)
    checks.check_eligible("pehe.eligible", no_offer_off, (2, 3), require_no_offer=False)


# --------------------------------------------------------------------- probability rows
def _table() -> np.ndarray:
    return np.array([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_row_sum_tolerance_boundary(sign):
    """A row off by half the tolerance is a distribution, off by twice the tolerance it is not."""
    inside, outside = _table(), _table()
    inside[2, 2] += sign * 0.5 * ROW_SUM_ATOL
    outside[2, 2] += sign * 2.0 * ROW_SUM_ATOL
    np.testing.assert_array_equal(checks.check_probability_rows("p", inside), inside)
    msg = _message(lambda: checks.check_probability_rows("p", outside))
    assert msg.startswith("p (row 2): expected rows summing to 1 (tolerance 1e-06), this row "
                          f"sums to {1 + sign * 2e-6:.10g}. Fix:")


def test_probability_rows_reject_entries_nan_dtype_and_shape():
    t = _table()
    t[1] = [1.1, -0.1, 0.0]
    assert _message(lambda: checks.check_probability_rows("p", t)).startswith(
        "p (row 1): has entries outside [0, 1]")
    t = _table()
    t[0, 1] = np.nan
    assert _message(lambda: checks.check_probability_rows("p", t)).startswith(
        "p (row 0): contains NaN")
    assert "expected a numeric array" in _message(
        lambda: checks.check_probability_rows("p", _table().astype(str)))
    assert "expected shape (n, K+1) or (S, n, K+1)" in _message(
        lambda: checks.check_probability_rows("p", np.ones(3) / 3))
    # a one-hot row rounded just above 1 is still a distribution (the same slack as the sum)
    one_hot = _table()
    one_hot[1, 0] = 1.0 + 0.5 * ROW_SUM_ATOL
    checks.check_probability_rows("p", one_hot)


def test_probability_rows_name_the_seed_of_a_batch():
    batch = np.stack([_table()] * 3)
    checks.check_probability_rows("p", batch)
    batch[2, 1, 0] = 0.9
    assert _message(lambda: checks.check_probability_rows("p", batch)).startswith(
        "p (seed 2, row 1): expected rows summing to 1")


# ------------------------------------------------------------------------------ support
def test_ineligible_mass_and_its_tolerance_boundary():
    eligible = np.array([[True, True, False], [True, False, False], [True, True, True]])
    p = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    np.testing.assert_array_equal(checks.ineligible_mass(p, eligible), [0.0, 0.0, 0.0])
    checks.check_support("p", p, eligible)
    inside, outside = p.copy(), p.copy()
    inside[1] = [1.0 - 0.5 * INELIGIBLE_MASS_ATOL, 0.25 * INELIGIBLE_MASS_ATOL,
                 0.25 * INELIGIBLE_MASS_ATOL]
    outside[1] = [1.0 - 2.0 * INELIGIBLE_MASS_ATOL, INELIGIBLE_MASS_ATOL, INELIGIBLE_MASS_ATOL]
    assert checks.ineligible_mass(inside, eligible)[1] == pytest.approx(0.5e-6, rel=1e-9)
    checks.check_support("p", inside, eligible)
    checks.check_probability_rows("p", inside, eligible=eligible)
    msg = _message(lambda: checks.check_probability_rows("p", outside, eligible=eligible))
    assert msg.startswith("p: puts probability 2e-06 on ineligible actions in row 1 (action 1")
    assert "tolerance 1e-06" in msg and "Fix: give ineligible actions probability 0" in msg
    # one mask for every seed of a batch; the seed goes into the location
    batch = np.stack([p, p, outside])
    assert _message(lambda: checks.check_support("p", batch, eligible)).startswith(
        "p (seed 2): puts probability 2e-06 on ineligible actions in row 1")
    assert "does not match" in _message(lambda: checks.check_support("p", p, eligible[:, :2]))


def test_check_logged_propensity():
    p = _table()
    np.testing.assert_array_equal(checks.check_logged_propensity("p", p, np.array([1, 0, 2])),
                                  [0.25, 1.0, 0.5])
    msg = _message(lambda: checks.check_logged_propensity("p", p, np.array([1, 2, 2])))
    assert msg.startswith("p (row 1): the logged action has probability 0; pscore must lie in "
                          "(0, 1]. Fix:")


# ------------------------------------------- one table, one tolerance, across the layers
def _fields(log: LoggedData) -> dict:
    return {f.name: getattr(log, f.name) for f in dataclasses.fields(log)}


def _off_by(log: LoggedData, delta: float) -> tuple[np.ndarray, int]:
    """The log's logging distribution with one row's logged-action entry moved by ``delta``
    (so that row sums to 1 + delta; nothing else changes)."""
    p = np.array(log.action_prob, dtype=np.float64, copy=True)
    row = int(np.flatnonzero((log.action > 0) & (p[np.arange(log.n), log.action] < 0.5))[0])
    p[row, log.action[row]] += delta
    return p, row


def _leaking(log: LoggedData, mass: float) -> tuple[np.ndarray, int]:
    """The log's logging distribution with ``mass`` moved from no-offer to an ineligible action
    of one row (the row still sums to 1)."""
    p = np.array(log.action_prob, dtype=np.float64, copy=True)
    row, col = (int(i) for i in np.argwhere(~log.eligible)[0])
    p[row, col] += mass
    p[row, 0] -= mass
    return p, row


def _layers(log: LoggedData) -> dict:
    """One call per layer that takes a probability table over the log's users."""
    tau = np.asarray(log.truth.tau_value)

    def estimators_layer(p):
        incremental_calibration(tau[:, 1], log.action, log.value, p, 1)
        LinearRecalibration().fit(tau[:, 1:], log.action, log.value, p)

    def policies_layer(p):
        epsilon_mix(p, log.eligible, epsilon=0.1)
        propensity_floor(p, log.eligible, floor=0.01)
        sample_actions(jax.random.key(0), p)
        explore(jax.random.key(1), p, log.eligible, epsilon=0.1)

    return {
        "simulators": lambda p: (LoggedData(**(_fields(log) | {"action_prob": p})),
                                 policy_truth(log.truth, p, eligible=log.eligible)),
        "policies": policies_layer,
        "estimators": estimators_layer,
    }


@pytest.mark.parametrize("layer", ["simulators", "policies", "estimators"])
def test_every_layer_rejects_the_same_bad_table_with_the_same_tolerance(uniform_log, layer):
    call = _layers(uniform_log)[layer]
    inside, _ = _off_by(uniform_log, 0.5 * ROW_SUM_ATOL)
    call(inside)  # off by half the tolerance: a distribution in every layer
    outside, row = _off_by(uniform_log, 2.0 * ROW_SUM_ATOL)
    msg = _message(lambda: call(outside))
    assert f"(row {row}): expected rows summing to 1 (tolerance 1e-06)" in msg, msg


@pytest.mark.parametrize("layer", ["simulators", "policies"])
def test_every_layer_rejects_mass_on_ineligible_actions_with_the_same_tolerance(uniform_log,
                                                                                layer):
    """Calibration does not take an eligibility mask (it reads the logged propensities as they
    are), so this invariant concerns the simulators and the decision layer."""
    call = _layers(uniform_log)[layer]
    inside, _ = _leaking(uniform_log, 0.5 * INELIGIBLE_MASS_ATOL)
    call(inside)
    outside, row = _leaking(uniform_log, 2.0 * INELIGIBLE_MASS_ATOL)
    msg = _message(lambda: call(outside))
    assert "ineligible actions" in msg and f"row {row}" in msg and "tolerance 1e-06" in msg, msg


# -------------------------------------------------------------------- dependency rule
def _imports(path: pathlib.Path) -> set[str]:
    """Every module a file imports (at any depth; ``from pkg import mod`` counts as
    ``pkg.mod``, ``from pkg.mod import name`` as ``pkg.mod``)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out |= ({node.module} if "." in node.module
                    else {f"{node.module}.{alias.name}" for alias in node.names})
    return out


@pytest.mark.parametrize("package", ["estimators", "policies", "simulators"])
def test_checks_are_the_shared_bottom_layer(package):
    """``estimators`` and ``policies`` never import ``simulators``; ``simulators`` and ``policies``
    take only ``estimators.checks`` and ``estimators.precision`` from the estimators."""
    for path in sorted((ROOT / package).glob("*.py")):
        mods = _imports(path)
        if package != "simulators":
            assert not any(m.split(".")[0] == "simulators" for m in mods), path
        if package != "estimators":
            from_estimators = {m for m in mods if m.split(".")[0] == "estimators"}
            assert from_estimators <= {"estimators.checks", "estimators.precision"}, (
                path, from_estimators)
