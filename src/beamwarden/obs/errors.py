"""Room: obs (stands alone). The exceptions of the obs library.

Exception tree::

    ObsError                    base of everything this library raises
    ├── InvalidRecord           a log record or metric sample breaks a rule (level, size, JSON)
    │   └── InvalidLevel        a level name outside the fixed set
    ├── InvalidMetric           a metric name, label set or kind that does not fit its family
    ├── InvalidQuery            a query parameter that cannot be understood (HTTP 400)
    └── StoreClosed             a store used after ``close()``
"""

from __future__ import annotations


class ObsError(Exception):
    """Base of every error of the obs library."""


class InvalidRecord(ObsError, ValueError):
    """A log record or metric sample breaks a rule."""


class InvalidLevel(InvalidRecord):
    """A level name outside :class:`~beamwarden.obs.levels.Level`."""


class InvalidMetric(ObsError, ValueError):
    """A metric name, label set or value that does not fit its family."""


class InvalidQuery(ObsError, ValueError):
    """A query parameter that cannot be understood; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


class StoreClosed(ObsError):
    """A store used after ``close()``."""
