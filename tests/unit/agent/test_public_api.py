"""The agent's public names: ``__all__`` is exactly what each package exports, and each resolves."""

from __future__ import annotations

import importlib

import pytest

EXPORTS = {
    "beamwarden.agent": {
        "Agent",
        "AgentConfig",
        "AgentError",
        "Clock",
        "ConfigError",
        "DriverError",
        "QueueError",
        "SensorSpec",
        "StateDirBusy",
        "SystemClock",
        "load_config",
        "parse_config",
    },
    "beamwarden.agent.drivers": {
        "ENTRY_POINT_GROUP",
        "Driver",
        "DriverConfig",
        "DriverInfo",
        "PollingDriver",
        "Sample",
        "SensorContext",
        "StreamingDriver",
        "Transport",
        "load_driver",
        "registered_drivers",
    },
    "beamwarden.agent.queue": {
        "MAX_READING_BYTES",
        "DeadLetter",
        "QueueStats",
        "QueueWriter",
        "QueuedReading",
        "ReadingQueue",
        "encode_reading",
    },
    "beamwarden.agent.push": {
        "Action",
        "Backoff",
        "Cycle",
        "Pusher",
        "ReadingSender",
        "TokenBucket",
        "Verdict",
        "classify",
        "equal_jitter",
        "retry_after_seconds",
    },
}


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_all_is_exactly_the_public_api(name: str) -> None:
    module = importlib.import_module(name)
    assert set(module.__all__) == EXPORTS[name]
    for symbol in module.__all__:
        assert getattr(module, symbol) is not None
