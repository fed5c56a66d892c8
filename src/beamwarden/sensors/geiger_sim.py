"""Room: sensors (pure). A firmware-faithful MightyOhm Geiger counter, fed one second at a time.

It does what the counter's ATtiny2313 firmware does once a second (and nothing with time itself:
the caller feeds each second's count, e.g. drawn from a Poisson law with its own seeded
``random.Random``):

* the second's count (capped at 65 535, the firmware's 16-bit counter) is the CPS;
* the sample buffer holds the last 60 one-second counts, each capped at 255 (8-bit cells);
* SLOW: CPM = the sum of the 60 samples;
* FAST: when the last 5 samples × 12 (the 5-second CPM) exceed 1000, that is the CPM;
* INST: when a second's count exceeds 255 (it does not fit the buffer), CPM = 60 × CPS;
* the dose is CPM × 0.0057 µSv/h (an SBM-20), truncated to two decimals in integer arithmetic.

:func:`firmware_line` prints the reading exactly as the firmware does, which
:func:`beamwarden.sensors.geiger.parse_geiger_line` reads back.
"""

from __future__ import annotations

from beamwarden.protocol import GeigerMode

from .geiger import GeigerReading

#: one-second samples kept (SLOW averaging)
LONG_PERIOD = 60
#: samples of the FAST average
SHORT_PERIOD = 5
#: the 5-second CPM above which the firmware reports FAST
FAST_THRESHOLD_CPM = 1000
#: largest count a sample cell holds (uint8); above it the second is reported INST
SAMPLE_MAX = 255
#: largest count of one second (the uint16 counter stops there)
COUNT_MAX = 65_535
#: µSv/h per CPM × 10 000 for the SBM-20 tube (0.0057)
SBM20_SCALE = 57
#: the firmware's line end
LINE_END = "\r\n"
#: what the firmware prints at power-on
BANNER = ("# mightyohm.com Geiger Counter 1.00", "# http://mightyohm.com/geiger")


class GeigerSimulator:
    """The firmware's averaging state. ``second(count)`` is one tick of its 1-second timer."""

    __slots__ = ("_index", "_samples", "_scale", "_slow_sum")

    def __init__(self, scale: int = SBM20_SCALE) -> None:
        """``scale``: µSv/h per CPM × 10 000 of the tube (57 for an SBM-20)."""
        if scale < 0:
            raise ValueError("the dose scale is not negative")
        self._samples = [0] * LONG_PERIOD
        self._index = 0
        self._slow_sum = 0
        self._scale = scale

    def second(self, count: int) -> GeigerReading:
        """Feed the GM events counted in one second; return the line the firmware prints."""
        if count < 0:
            raise ValueError(f"a count is not negative: {count}")
        cps = min(count, COUNT_MAX)
        sample = min(cps, SAMPLE_MAX)
        index = self._index
        self._slow_sum += sample - self._samples[index]
        self._samples[index] = sample
        fast_sum = sum(self._samples[(index - i) % LONG_PERIOD] for i in range(SHORT_PERIOD))
        self._index = (index + 1) % LONG_PERIOD
        fast_cpm = fast_sum * (LONG_PERIOD // SHORT_PERIOD)
        if cps > SAMPLE_MAX:
            cpm, mode = cps * 60, GeigerMode.INST
        elif fast_cpm > FAST_THRESHOLD_CPM:
            cpm, mode = fast_cpm, GeigerMode.FAST
        else:
            cpm, mode = self._slow_sum, GeigerMode.SLOW
        hundredths = cpm * self._scale // 100
        return GeigerReading(cps, cpm, hundredths / 100, mode)


def firmware_line(reading: GeigerReading) -> str:
    """The line the firmware prints for ``reading``, without its CRLF (see :data:`LINE_END`)."""
    return (
        f"CPS, {reading.cps}, CPM, {reading.cpm}, "
        f"uSv/hr, {reading.usv_per_hour:.2f}, {reading.mode.value}"
    )
