"""Room: agent (pi-log; imports protocol, sensors, obs — never the server). The per-node agent.

Drivers read sensors (``drivers/``), the scheduler runs them in isolation, every reading is
committed to a durable bounded queue (``queue/``) and the push client delivers it to the server
exactly once in effect (``push/``), while the node registers and heartbeats (``node``). ``pi-log``
is the command line (``cli``); ``docs/agent.md`` is the guide.
"""

from .clock import Clock, SystemClock
from .config import AgentConfig, SensorSpec, load_config, parse_config
from .errors import AgentError, ConfigError, DriverError, QueueError, StateDirBusy
from .runner import Agent

__all__ = [
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
]
