"""Room: server/web. A sensor as the pages show it: its newest values with their units, its age,
its registry name and room (fleet-wide devices), and a chart per numeric field.

Pure presentation over ``SensorLatest`` rows (no I/O); the node and sensors pages share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from beamwarden.protocol import is_fleet_wide
from beamwarden.protocol.vocabulary import VOCABULARY
from beamwarden.server.device_records import DeviceRow
from beamwarden.server.records import SensorLatest, from_us

#: fields that make a sensor a climate sensor on the sensors page
CLIMATE_FIELDS = frozenset({"temperature_c", "humidity_pct", "pressure_pa", "battery_pct"})
#: a unit for each field name the vocabulary knows (the first sensor type naming it wins)
UNITS: dict[str, str] = {}
for _fields in VOCABULARY.values():
    for _name, _spec in _fields.items():
        UNITS.setdefault(_name, _spec.unit)


@dataclass(frozen=True, slots=True)
class FieldChart:
    name: str
    unit: str
    value: float | None
    url: str


@dataclass(slots=True)
class SensorCard:
    sensor: SensorLatest
    node_id: str | None  # the owner, or for a fleet-wide device the node that heard it last
    name: str | None = None  # the registry's name for a fleet-wide device
    room: str | None = None
    age_seconds: float | None = None
    charts: list[FieldChart] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)

    @property
    def key(self) -> str:
        """A stable, URL-safe id for the page's anchors."""
        owner = self.sensor.owner or "fleet"
        return "".join(c if c.isalnum() else "-" for c in f"{owner}-{self.sensor.sensor_id}")

    @property
    def is_geiger(self) -> bool:
        return "cps" in (c.name for c in self.charts)

    @property
    def is_climate(self) -> bool:
        return not self.is_geiger and any(c.name in CLIMATE_FIELDS for c in self.charts)


def series_url(sensor: SensorLatest, name: str) -> str:
    params = {"sensor_id": sensor.sensor_id, "field": name}
    if not is_fleet_wide(sensor.sensor_id):
        params["node_id"] = sensor.owner
    if name == "cps":  # a Geiger counter's rate: its band is the exact Poisson interval
        params["band"] = "garwood"
    return "/ui/series?" + urlencode(params)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def sensor_card(
    sensor: SensorLatest, now: datetime, devices: dict[str, DeviceRow] | None = None
) -> SensorCard:
    numeric = list(sensor.fields) + [
        k for k, v in sensor.payload.items() if k not in sensor.fields and _number(v) is not None
    ]
    card = SensorCard(sensor, sensor.owner or sensor.node_id)
    if sensor.ts_us is not None:
        card.age_seconds = max(0.0, (now - from_us(sensor.ts_us)).total_seconds())
    for name in numeric:
        value = _number(sensor.payload.get(name))
        card.charts.append(FieldChart(name, UNITS.get(name, ""), value, series_url(sensor, name)))
    card.texts = [
        (k, str(v))
        for k, v in sorted(sensor.payload.items())
        if k not in numeric and isinstance(v, str | bool)
    ]
    device = (devices or {}).get(sensor.sensor_id)
    if device is not None:
        card.name, card.room = device.name, device.room
    return card


def devices_by_id(rows: list[DeviceRow]) -> dict[str, DeviceRow]:
    """Registry rows by device id and by vendor id (a sensor id may be either)."""
    out: dict[str, DeviceRow] = {}
    for row in rows:
        out[row.device_id] = row
        if row.vendor_id:
            out.setdefault(row.vendor_id, row)
    return out
