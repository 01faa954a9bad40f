"""The plan format: `docs/plan-format.md` is its specification."""
