"""The Hillstrom adapter reproduces the experiment's published arm means."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.hillstrom import default_path, load_hillstrom

pytestmark = pytest.mark.skipif(not default_path().is_file(),
                                reason=f"Hillstrom CSV not found at {default_path()}")

PUBLISHED_SPEND = (0.6528, 1.4226, 1.0772)  # no e-mail, men's, women's (per customer)


@pytest.fixture(scope="module")
def hillstrom():
    return load_hillstrom()


def test_arm_means_match_published(hillstrom):
    assert hillstrom.n == 64_000 and hillstrom.truth is None
    for a, published in enumerate(PUBLISHED_SPEND):
        assert round(float(hillstrom.value[hillstrom.action == a].mean()), 4) == published
    shares = np.bincount(hillstrom.action) / hillstrom.n
    np.testing.assert_allclose(shares, 1 / 3, atol=0.01)
    assert np.all(hillstrom.pscore == 1 / 3)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="path: Hillstrom CSV not found"):
        load_hillstrom(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="outcome"):
        load_hillstrom(outcome="revenue")
    with pytest.raises(ValueError, match="cost_per_email"):
        load_hillstrom(cost_per_email=-1.0)
