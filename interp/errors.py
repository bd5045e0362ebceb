"""Errors a user can act on: each message says what is wrong and how to fix it."""


class HypodriveError(Exception):
    """Base class of every error hypodrive raises on purpose."""


class ConfigError(HypodriveError, ValueError):
    """An agent or environment configuration is invalid or inconsistent."""


class CheckpointError(HypodriveError, ValueError):
    """A checkpoint file cannot be loaded safely or does not match its configuration."""
