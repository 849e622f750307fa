"""estimators package."""

