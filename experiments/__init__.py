"""experiments package."""

