"""Room: server/notify (adapter). Notifiers: the ``Sender`` port of
:mod:`beamwarden.server.services.notifications`, through apprise (Discord, Slack, e-mail, ntfy,
Telegram, generic JSON webhooks …). Never imports services; the app and the CLI construct it."""

from .apprise_sender import AppriseSender, describe_url

__all__ = ["AppriseSender", "describe_url"]
