"""The public names of the pure rooms: ``__all__`` is exactly what is exported, and each resolves."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

PROTOCOL = {
    "CURRENT",
    "MAX_BATCH",
    "VOCABULARY",
    "BatchTooLarge",
    "ErrorEnvelope",
    "Event",
    "FieldKind",
    "FieldSpec",
    "GeigerMode",
    "IngestResult",
    "InstanceState",
    "Issue",
    "NodeRecord",
    "NodeStatus",
    "Page",
    "ProtocolError",
    "Reading",
    "Registered",
    "Registration",
    "SchemaViolation",
    "Scope",
    "SensorType",
    "SeriesBucket",
    "StoredReading",
    "StreamSeq",
    "Telemetry",
    "UnsupportedProtocolVersion",
    "VersionVerdict",
    "WireReading",
    "check_protocol_version",
    "covered",
    "decode_readings",
    "is_fleet_wide",
    "is_ident",
    "merge_ranges",
    "parse_stream_id",
    "ranges_of",
}
FLEET = {
    "DEFAULT_INTERVAL",
    "DEFAULT_TTL",
    "TUBE_FACTORS",
    "AnalyticsError",
    "ClockOffset",
    "FleetError",
    "GeigerSummary",
    "Grant",
    "Holder",
    "InvalidLease",
    "Lease",
    "LeaseHeld",
    "LeaseRefusal",
    "StaleEpoch",
    "StalenessPolicy",
    "StreamCadence",
    "StreamFreshness",
    "Transition",
    "TransitionRefused",
    "TubeFactor",
    "WindowStats",
    "count_interval",
    "dead_time_correct",
    "dose_rate",
    "node_status",
    "plausible_window",
    "rate_interval",
    "status_at_age",
    "status_limits_us",
    "summarise",
    "suspect_timestamp",
    "transition",
    "ttl_for_interval",
    "window_stats",
}
ROOMS = [("beamwarden.protocol", PROTOCOL), ("beamwarden.fleet", FLEET)]


def public_names(module: ModuleType) -> set[str]:
    """What the package itself defines or re-exports, leaving out its submodules (and counting
    the names it imports on first use, ``_MESSAGES`` in ``protocol``)."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not (isinstance(value, ModuleType) and value.__name__.startswith(module.__name__))
        and name not in ("annotations", "TYPE_CHECKING")
    } | set(getattr(module, "_MESSAGES", ()))


@pytest.mark.parametrize(("name", "expected"), ROOMS)
def test_all_is_exactly_the_public_names(name: str, expected: set[str]) -> None:
    module = importlib.import_module(name)
    assert len(module.__all__) == len(set(module.__all__)), "no duplicates"
    assert set(module.__all__) == expected
    assert public_names(module) == expected
    assert list(module.__all__) == sorted(module.__all__, key=lambda n: (not n.isupper(), n))


@pytest.mark.parametrize(("name", "expected"), ROOMS)
def test_every_name_resolves(name: str, expected: set[str]) -> None:
    module = importlib.import_module(name)
    for attr in module.__all__:
        assert getattr(module, attr) is not None


@pytest.mark.parametrize(("name", "expected"), ROOMS)
def test_star_import_gives_exactly_all(name: str, expected: set[str]) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {name} import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == expected


def test_classes_and_functions_say_where_they_live() -> None:
    for name, expected in ROOMS:
        module = importlib.import_module(name)
        for attr in expected:
            value = getattr(module, attr)
            owner = getattr(value, "__module__", None)
            if owner is not None and callable(value):
                assert owner.startswith(name + "."), (attr, owner)
