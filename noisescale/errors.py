"""The exceptions noisescale raises beyond Python's own (ValueError, TypeError, ...)."""

from __future__ import annotations


class Cancelled(Exception):
    """A long job (streaming, simulation, sweep) was stopped through its ``cancel`` event or a
    signal; nothing partial was written."""


class ConfigError(ValueError):
    """A sweep configuration that cannot run; the message names the key."""


__all__ = ["Cancelled", "ConfigError"]
