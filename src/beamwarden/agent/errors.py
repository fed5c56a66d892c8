"""Room: agent (errors; imports nothing of the agent). The agent's exception tree.

::

    AgentError                  base of everything the agent raises on purpose
    ├── ConfigError             the TOML config is wrong; ``problems`` names table, key and what
    ├── DriverError             a driver cannot be found, loaded or built
    ├── QueueError              the queue file cannot be opened or is not ours
    └── StateDirBusy            another pi-log process already runs on this state directory
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of the agent's own errors."""


class ConfigError(AgentError):
    """The config is invalid. ``problems`` lists every problem, one line each
    (``sensor[2].interval_ms: must be greater than 0``)."""

    def __init__(self, problems: list[str], source: str = "config"):
        super().__init__(f"{source}: " + "; ".join(problems))
        self.problems = problems
        self.source = source


class DriverError(AgentError):
    """A driver cannot be found, imported or constructed."""


class QueueError(AgentError):
    """The queue file cannot be opened, or it is not a pi-log queue."""


class StateDirBusy(AgentError):
    """Another pi-log process holds the lock of this state directory."""
