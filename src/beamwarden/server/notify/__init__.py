"""Room: server/notify (adapter). Notifiers; built by the alerts issue."""
