"""NotificationService on fakes (no database, no network): templates, the per-channel rate limit
(delayed, never dropped), retries with backoff, giving up, and the apprise adapter's own words."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from beamwarden.fleet.alerts import Transition, TransitionKind
from beamwarden.server.alert_records import NewNotification, NotificationRow
from beamwarden.server.notify import AppriseSender, describe_url
from beamwarden.server.records import to_us
from beamwarden.server.services.clock import FakeClock
from beamwarden.server.services.notifications import (
    NotificationService,
    NotifyConfig,
    render,
    template_fields,
)

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class FakeSender:
    def __init__(self, *channels: str) -> None:
        self.names = list(channels)
        self.sent: list[tuple[str, str]] = []
        self.errors: list[str | None] = []

    def channels(self) -> list[str]:
        return self.names

    async def send(self, channel: str, title: str, body: str) -> str | None:
        error = self.errors.pop(0) if self.errors else None
        if error is None:
            self.sent.append((channel, title))
        return error


class FakeOutbox:
    def __init__(self) -> None:
        self.rows: dict[int, NotificationRow] = {}

    def add(self, new: NewNotification) -> None:
        row_id = len(self.rows) + 1
        self.rows[row_id] = NotificationRow(
            row_id, new.created_us, new.channel, new.rule, new.subject, new.kind,
            new.title, new.body, "pending", 0, new.created_us,
        )  # fmt: skip

    async def due_notifications(self, now_us: int, limit: int = 100) -> list[NotificationRow]:
        due = [
            r for r in self.rows.values() if r.status == "pending" and r.next_attempt_us <= now_us
        ]
        return sorted(due, key=lambda r: (r.next_attempt_us, r.id))[:limit]

    async def update_notification(self, notification_id: int, **values: object) -> None:
        self.rows[notification_id] = dataclasses.replace(self.rows[notification_id], **values)  # type: ignore[arg-type]

    async def list_notifications(
        self, limit: int, before_id: int | None = None
    ) -> list[NotificationRow]:
        return sorted(self.rows.values(), key=lambda r: -r.id)[:limit]


def hot(kind: TransitionKind = TransitionKind.FIRING, silenced: bool = False) -> Transition:
    return Transition(
        "attic", kind, "node-1/bme/temperature_c", "node-1", T0, "critical", 31.5, 30.0,
        T0, silenced, "bme", "temperature_c", "",
    )  # fmt: skip


def service(
    sender: FakeSender, rate: int = 30, attempts: int = 3
) -> tuple[NotificationService, FakeOutbox, FakeClock]:
    outbox, clock = FakeOutbox(), FakeClock(T0)
    config = NotifyConfig(rate_per_minute=rate, max_attempts=attempts, link_base="https://bw/")
    return NotificationService(outbox, sender, clock, config), outbox, clock


def test_templates_name_node_value_threshold_and_link() -> None:
    fields = template_fields(hot(), "https://bw/")
    assert render("{headline} | {value} > {threshold} | {link}", fields) == (
        "attic fired for bme/temperature_c on node-1 | 31.5 > 30 | https://bw/nodes/node-1"
    )
    assert render("{nope} {rule}", fields) == "{nope} attic"  # unknown names stay as written
    assert render("{value:>", fields).startswith("(template error)")


def test_messages_skip_silenced_transitions_and_fan_out_to_channels() -> None:
    notify, _, _ = service(FakeSender("a", "b"))
    made = notify.messages([hot(), hot(silenced=True)], T0)
    assert [(m.channel, m.title) for m in made] == [
        ("a", "[FIRING] attic: node-1/bme/temperature_c"),
        ("b", "[FIRING] attic: node-1/bme/temperature_c"),
    ]


async def test_a_channel_over_its_rate_is_delayed_not_dropped() -> None:
    sender = FakeSender("a")
    notify, outbox, clock = service(sender, rate=2)
    for m in notify.messages([hot()] * 3, T0):
        outbox.add(m)
    first = await notify.deliver_due()
    assert (first.sent, first.delayed) == (2, 1)
    assert outbox.rows[3].next_attempt_us == to_us(T0 + timedelta(seconds=60))
    clock.advance(60)
    assert (await notify.deliver_due()).sent == 1
    assert len(sender.sent) == 3


async def test_failures_back_off_then_give_up_recorded() -> None:
    sender = FakeSender("a")
    sender.errors = ["HTTP 500", "HTTP 502", "timeout"]
    notify, outbox, clock = service(sender, attempts=3)
    outbox.add(notify.messages([hot()], T0)[0])
    assert (await notify.deliver_due()).retried == 1
    assert (outbox.rows[1].attempts, outbox.rows[1].error) == (1, "HTTP 500")
    assert outbox.rows[1].next_attempt_us == to_us(T0 + timedelta(seconds=30))
    clock.advance(30)
    await notify.deliver_due()
    assert outbox.rows[1].next_attempt_us == to_us(T0 + timedelta(seconds=90))  # 30 s, then 60 s
    clock.advance(60)
    assert (await notify.deliver_due()).failed == 1
    assert (outbox.rows[1].status, outbox.rows[1].attempts, outbox.rows[1].error) == (
        "failed",
        3,
        "timeout",
    )
    assert notify.backoff_s(20) == 3600.0


async def test_apprise_sender_refuses_unknown_urls_without_showing_them() -> None:
    sender = AppriseSender(
        {"bad": "nosuchscheme://secret-token@host", "hook": "json://127.0.0.1:9/x"}
    )
    assert sender.channels() == ["hook"]
    assert "secret-token" not in sender.invalid["bad"]
    assert await sender.send("bad", "t", "b") == sender.invalid["bad"]
    assert describe_url("json://127.0.0.1:9000/alerts") == "json → 127.0.0.1:9000"
    assert describe_url("discord://id/secret") == "discord"
