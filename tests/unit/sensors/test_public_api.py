"""The public names of ``beamwarden.sensors``: ``__all__`` is exactly what is exported."""

from __future__ import annotations

from types import ModuleType

import beamwarden.sensors as sensors

SENSORS = {
    "Availability",
    "AvailabilityKind",
    "Bme280Calibration",
    "Bme280Raw",
    "Bme280Reading",
    "DecodeError",
    "GatewayReading",
    "GeigerReading",
    "GeigerSimulator",
    "GoveeReading",
    "UnsupportedPayload",
    "ble_device_id",
    "compensate_bme280",
    "decode_bme280",
    "decode_bt_to_mqtt",
    "decode_gateway_message",
    "decode_govee",
    "decode_govee2mqtt",
    "firmware_line",
    "govee_device_ids",
    "normalise_mac",
    "parse_bme280_calibration",
    "parse_bme280_raw",
    "parse_geiger_line",
}


def public_names(module: ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not (isinstance(value, ModuleType) and value.__name__.startswith(module.__name__))
        and name != "annotations"
    }


def test_all_is_exactly_the_public_names() -> None:
    assert len(sensors.__all__) == len(set(sensors.__all__)), "no duplicates"
    assert set(sensors.__all__) == SENSORS
    assert public_names(sensors) == SENSORS
    assert list(sensors.__all__) == sorted(sensors.__all__, key=lambda n: (not n.isupper(), n))


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from beamwarden.sensors import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == SENSORS


def test_classes_and_functions_say_where_they_live() -> None:
    for name in SENSORS:
        value = getattr(sensors, name)
        assert value is not None
        owner = getattr(value, "__module__", None)
        if owner is not None and callable(value):
            assert owner.startswith("beamwarden.sensors."), (name, owner)


def test_one_base_exception() -> None:
    assert issubclass(sensors.UnsupportedPayload, sensors.DecodeError)
    assert issubclass(sensors.DecodeError, ValueError)
