"""The `tensorplan` command."""
