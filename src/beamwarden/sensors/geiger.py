"""Room: sensors (pure; imports only ``protocol``). The serial line of a MightyOhm Geiger counter.

Once a second the firmware prints one line (9600 8-N-1, CRLF)::

    CPS, 12, CPM, 702, uSv/hr, 4.00, SLOW

and at power-on two banner lines starting with ``#``. What is accepted:

* exactly seven comma-separated fields: ``CPS``, a count, ``CPM``, a count, ``uSv/hr``, a dose,
  a mode. Labels match in any (ASCII) case, spaces and tabs around any field are tolerated;
* counts are non-negative decimal integers (at most 10 digits), the dose a non-negative decimal
  (``4``, ``4.0``, ``4.00``), the mode ``SLOW``, ``FAST`` or ``INST`` in any case (reported upper
  case);
* banner lines (``#`` first) and blank lines are "no reading": :func:`parse_geiger_line` returns
  ``None``. Anything else raises :class:`DecodeError`.

The result's fields are PROTOCOL.md's names for sensor_type ``geiger``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from beamwarden.protocol import GeigerMode, SensorType

from .errors import DecodeError

_SP = r"[ \t]*"
_LINE_RE = re.compile(
    rf"{_SP}CPS{_SP},{_SP}([0-9]{{1,10}}){_SP},"
    rf"{_SP}CPM{_SP},{_SP}([0-9]{{1,10}}){_SP},"
    rf"{_SP}uSv/hr{_SP},{_SP}([0-9]{{1,10}}(?:\.[0-9]{{1,10}})?){_SP},"
    rf"{_SP}(SLOW|FAST|INST){_SP}",
    re.IGNORECASE | re.ASCII,
)
_FIELDS = 7
_MODES = {m.value: m for m in GeigerMode}


@dataclass(frozen=True, slots=True)
class GeigerReading:
    """One line of the counter: counts per second and per minute, the dose rate, the mode."""

    cps: int
    cpm: int
    usv_per_hour: float
    mode: GeigerMode

    sensor_type: ClassVar[str] = SensorType.GEIGER.value

    def payload(self) -> dict[str, int | float | str]:
        """The reading's payload in PROTOCOL.md's vocabulary for ``geiger``."""
        return {
            "cps": self.cps,
            "cpm": self.cpm,
            "usv_per_hour": self.usv_per_hour,
            "mode": self.mode.value,
        }


def parse_geiger_line(line: str | bytes) -> GeigerReading | None:
    """One serial line → a reading; ``None`` for a banner or blank line; else :class:`DecodeError`.

    A trailing CR/LF is ignored. Bytes must be ASCII.
    """
    if isinstance(line, bytes):
        try:
            line = line.decode("ascii")
        except UnicodeDecodeError:
            raise DecodeError(f"a Geiger line is ASCII text, got {line[:80]!r}") from None
    text = line.strip(" \t\r\n")
    if not text or text.startswith("#"):
        return None
    match = _LINE_RE.fullmatch(text)
    if match is None:
        fields = text.count(",") + 1
        if fields != _FIELDS:
            raise DecodeError(f"a Geiger line has {_FIELDS} comma-separated fields, not {fields}")
        raise DecodeError(f"not a Geiger line (CPS, n, CPM, n, uSv/hr, d.dd, mode): {text[:80]!r}")
    cps, cpm, dose, mode = match.groups()
    return GeigerReading(int(cps), int(cpm), float(dose), _MODES[mode.upper()])
