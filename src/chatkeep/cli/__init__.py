"""The `chatkeep` command line."""
