"""Room: obs (stands alone, pure). Log levels: a fixed set, parsed case-insensitively.

The numbers are the stdlib ``logging`` ones, so a stdlib level maps to the highest of ours at or
below it (``logging.INFO + 5`` is ``INFO``; anything below ``DEBUG`` is ``DEBUG``).
"""

from __future__ import annotations

from enum import IntEnum

from .errors import InvalidLevel


class Level(IntEnum):
    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40
    CRITICAL = 50

    @property
    def label(self) -> str:
        """The lower-case name used on the wire and in stores' output."""
        return _LABELS[self]


_LABELS = {level: level.name.lower() for level in Level}
_BY_NAME = {level.name.lower(): level for level in Level} | {
    "warn": Level.WARNING,
    "fatal": Level.CRITICAL,
}
_ORDERED = sorted(Level)


def parse_level(text: str) -> Level:
    """``"info"``, ``"INFO"``, ``" Warning "`` (and the aliases ``warn``, ``fatal``) → a Level."""
    try:
        return _BY_NAME[text.strip().lower()]
    except KeyError:
        names = ", ".join(_LABELS.values())
        raise InvalidLevel(f"unknown level {text[:40]!r}; expected one of {names}") from None


def level_from_number(number: int) -> Level:
    """The highest level at or below ``number`` (DEBUG for anything lower)."""
    found = Level.DEBUG
    for level in _ORDERED:
        if level <= number:
            found = level
    return found


#: stdlib levelno → Level, for the numbers the handler sees all the time
STDLIB_LEVELS: dict[int, Level] = {n: level_from_number(n) for n in range(0, 61)}
