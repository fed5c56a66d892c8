"""Alert rules on a numeric field past a sensor's eight slot columns (kept only in the payload):
judged like any other, on SQLite and PostgreSQL, with the local webhook receiver."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from beamwarden.protocol import Scope
from tests.conftest import START, Server
from tests.integration.test_alerts_flow import (
    Receiver,
    alerts_of,
    push,
    put_rules,
    receiver,
    settings_overrides,
)

__all__ = ["receiver", "settings_overrides"]  # fixtures


def wide(seconds: int, last: float) -> dict[str, Any]:
    """A reading of ten numeric fields: f0 … f7 take the slots, f8 and f9 stay in the payload."""
    payload: dict[str, Any] = {f"f{i}": float(i) for i in range(9)}
    payload["f9"] = last
    return {
        "node_id": "node-1",
        "sensor_type": "multi",
        "sensor_id": "wide",
        "payload": payload,
        "timestamp": (START + timedelta(seconds=seconds)).isoformat(),
    }


async def test_a_field_past_the_slots_fires_and_resolves(
    server: Server, receiver: Receiver
) -> None:
    token, admin = await server.node(), await server.user(Scope.ADMIN)
    rule = {"name": "f9-high", "kind": "threshold", "field": "f9", "above": 5.0}
    await put_rules(server, admin, {"rules": [rule]})
    alerts = alerts_of(server)
    await push(server, token, [wide(0, 1.0), wide(1, 9.5)])
    server.clock.set(START + timedelta(seconds=60))
    await alerts.step()
    await push(server, token, [wide(61, 2.0)])
    server.clock.advance(60)
    await alerts.step()
    titles = [m.split("\n")[0] for m in receiver.messages()]
    assert titles == ["[FIRING] f9-high: node-1/wide/f9", "[RESOLVED] f9-high: node-1/wide/f9"]
    assert "value: 9.5 (threshold 5)" in receiver.messages()[0]
