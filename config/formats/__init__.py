"""Formats Baton overrides (FORMAT_MODULE_PATH): times to the second, with their timezone."""
