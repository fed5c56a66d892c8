"""Room: agent (drivers). ``mightyohm``: the MightyOhm Geiger counter on a serial port (streaming).

The counter prints one line a second (9600 8-N-1): ``CPS, 12, CPM, 702, uSv/hr, 4.00, SLOW``.
The driver opens the port (pyserial, non-blocking, ``exclusive``), waits for bytes with the event
loop (``add_reader``: no thread, no polling) and decodes each line with the pure
:func:`beamwarden.sensors.parse_geiger_line`. ``#`` banner lines and blank lines are skipped; a
line that does not decode is counted in ``malformed`` (the first one of a run is logged) and never
stored as zeros. Readings are ``sensor_type = "geiger"`` (``cps``, ``cpm``, ``usv_per_hour``,
``mode``, and ``tube_type`` when the config names the tube).

Unplug and replug: reading a vanished USB serial device fails, the stream raises and the scheduler
subscribes again with backoff, which reopens the port by its path (use a stable
``/dev/serial/by-id/…`` path). Silence longer than the sensor's ``timeout_ms`` (default 10 s here,
ten missed lines) makes the scheduler drop the port and reopen it too.

Touches: the serial port named in the config, nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import serial
from pydantic import Field

from beamwarden.agent.drivers.base import (
    DriverConfig,
    DriverInfo,
    Sample,
    SensorContext,
    StreamingDriver,
    Transport,
    Value,
)
from beamwarden.sensors import DecodeError, parse_geiger_line
from beamwarden.sensors.geiger import GeigerReading

log = logging.getLogger("beamwarden.agent.drivers.mightyohm")

#: a line longer than this is noise on the wire (a real line is about 40 bytes)
MAX_LINE_BYTES = 256
#: bytes read per wake-up; the counter sends about 40 a second
READ_CHUNK = 4096


class MightyOhmConfig(DriverConfig):
    #: the serial device; prefer a stable /dev/serial/by-id/… path
    port: str = Field(min_length=1)
    baudrate: int = Field(9600, gt=0)
    #: the tube fitted (e.g. "SBM-20"), sent as ``tube_type`` with every reading
    tube_type: str | None = Field(None, min_length=1, max_length=64)


class MightyOhmDriver(StreamingDriver):
    info = DriverInfo(
        name="mightyohm",
        transport=Transport.SERIAL,
        config_model=MightyOhmConfig,
        summary="MightyOhm Geiger counter on a serial port, one reading a second",
    )

    def __init__(self, config: DriverConfig, context: SensorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, MightyOhmConfig)
        self.settings = config
        self.lines = 0
        self.opened = 0
        self._complaining = False

    def _open(self) -> serial.Serial:
        return serial.Serial(self.settings.port, self.settings.baudrate, timeout=0, exclusive=True)

    def _payload(self, reading: GeigerReading) -> dict[str, Value]:
        payload: dict[str, Value] = dict(reading.payload())
        if self.settings.tube_type is not None:
            payload["tube_type"] = self.settings.tube_type
        return payload

    def decode(self, line: bytes) -> Sample | None:
        """One line → a sample; ``None`` for banners, blanks and malformed lines (counted)."""
        try:
            reading = parse_geiger_line(line)
        except DecodeError as exc:
            self.malformed += 1
            if not self._complaining:
                self._complaining = True
                log.warning(
                    "%s: malformed line %r (%s); counting such lines until a good one",
                    self.context.sensor_id,
                    line[:80],
                    exc,
                )
            return None
        if reading is None:
            return None
        self._complaining = False
        self.lines += 1
        return Sample(self._payload(reading), self.context.clock.now(), sensor_type="geiger")

    async def subscribe(self) -> AsyncIterator[Sample]:
        port = await asyncio.to_thread(self._open)
        self.opened += 1
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        fd = port.fileno()
        loop.add_reader(fd, readable.set)
        pending = b""
        try:
            while True:
                await readable.wait()
                readable.clear()
                # non-blocking; a vanished device raises SerialException (an OSError's cousin)
                chunk = port.read(READ_CHUNK)
                *lines, pending = (pending + chunk).split(b"\n")
                if len(pending) > MAX_LINE_BYTES:
                    self.decode(pending[:MAX_LINE_BYTES])  # counted as malformed
                    pending = b""
                for line in lines:
                    sample = self.decode(line)
                    if sample is not None:
                        yield sample
        finally:
            loop.remove_reader(fd)
            port.close()
