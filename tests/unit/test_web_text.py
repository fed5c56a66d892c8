"""The dashboard's pure helpers: durations, age colours, the login limiter."""

from __future__ import annotations

from beamwarden.server.services.users import LoginLimiter
from beamwarden.server.web.rendering import safe_next
from beamwarden.server.web.templating import age_class, duration, number


def test_durations_show_two_units() -> None:
    assert duration(None) == ""
    assert duration(-3) == "0s"
    assert duration(45.9) == "45s"
    assert duration(3 * 60 + 7) == "3m 7s"
    assert duration(4 * 3600 + 23 * 60 + 59) == "4h 23m"
    assert duration(2 * 86_400 + 3 * 3600 + 5) == "2d 3h"


def test_heartbeat_age_colours_follow_the_status_thresholds() -> None:
    assert age_class(None, 30) == "mute"
    assert age_class(60, 30) == "ok"
    assert age_class(61, 30) == "warn"
    assert age_class(150, 30) == "warn"
    assert age_class(151, 30) == "bad"


def test_numbers() -> None:
    assert number(1234567) == "1 234 567"
    assert number(0.123456) == "0.12"
    assert number(None) == ""
    assert number(True) == "True"


def test_login_limiter_slides() -> None:
    limiter = LoginLimiter(3, 60)
    keys = ("ip:1", "user:a")
    for t in (0, 1, 2):
        assert limiter.retry_after(keys, t) == 0
        limiter.failed(keys, t)
    assert limiter.retry_after(keys, 3) == 57
    assert limiter.retry_after(("ip:2", "user:a"), 3) == 57  # the name is limited from anywhere
    assert limiter.retry_after(("ip:2", "user:b"), 3) == 0
    assert limiter.retry_after(keys, 60.5) == 0  # the first failure left the window
    limiter.succeeded(keys)
    assert limiter.retry_after(keys, 61) == 0


def test_safe_next() -> None:
    assert safe_next(None) == "/"
    assert safe_next("/nodes/a?x=1") == "/nodes/a?x=1"
    for bad in ("https://evil", "//evil", "/\\evil", "javascript:alert(1)"):
        assert safe_next(bad) == "/"
