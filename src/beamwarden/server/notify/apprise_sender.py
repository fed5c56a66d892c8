"""Room: server/notify (adapter). :class:`AppriseSender`: named channels, each an apprise URL.

Channels come from the setting ``notify_urls`` (``{"ops": "discord://…", "hook":
"json://127.0.0.1:9000/alerts"}``). A channel's URL holds its secret (a webhook token, a
password): it is never logged nor returned; errors name the channel only. apprise reports a
failed send as ``False`` and log lines, not as an exception: the lines are captured and become
the error recorded with the notification. Every send is bounded by ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit


@contextlib.contextmanager
def _quiet_imports() -> Iterator[None]:
    """apprise's PGP helper imports the standard library's ``imghdr`` (deprecated since 3.11)
    when its plugins load: not ours to fix, and our tests treat warnings as errors."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*imghdr.*", category=DeprecationWarning)
        yield


with _quiet_imports():
    import apprise

log = logging.getLogger("beamwarden.notify")


def describe_url(url: str) -> str:
    """What a channel is, without its secrets: ``discord``, ``json → 127.0.0.1:9000``."""
    parts = urlsplit(url)
    scheme = parts.scheme or "?"
    if scheme in ("json", "jsons", "form", "forms", "xml", "xmls") and parts.hostname:
        port = f":{parts.port}" if parts.port else ""
        return f"{scheme} → {parts.hostname}{port}"
    return scheme


class AppriseSender:
    """One apprise object per channel; ``send`` runs apprise's own async path."""

    def __init__(self, urls: Mapping[str, str], timeout_s: float = 15.0) -> None:
        self._timeout_s = timeout_s
        self._channels: dict[str, apprise.Apprise] = {}
        self.invalid: dict[str, str] = {}
        """Channels whose URL apprise does not understand (name → why), left out."""
        for name, url in urls.items():
            target = apprise.Apprise()
            with _quiet_imports():
                added = target.add(url)
            if not added:
                self.invalid[name] = f"apprise does not understand the {describe_url(url)} URL"
                log.warning("notification channel %s left out: %s", name, self.invalid[name])
                continue
            self._channels[name] = target

    def channels(self) -> list[str]:
        return list(self._channels)

    async def send(self, channel: str, title: str, body: str) -> str | None:
        target = self._channels.get(channel)
        if target is None:
            return self.invalid.get(channel, f"no channel {channel!r}")
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:  # type: ignore[no-untyped-call]
            try:
                async with asyncio.timeout(self._timeout_s):
                    ok = bool(await target.async_notify(body=body, title=title))
            except TimeoutError:
                return f"no answer within {self._timeout_s:g} s"
            except Exception as exc:  # a plugin's bug must not stop the other channels
                return f"{type(exc).__name__}: {exc}"[:500]
            lines = captured.getvalue().strip()
        if ok:
            return None
        return (lines.splitlines()[-1] if lines else "apprise reported a failure")[:500]
