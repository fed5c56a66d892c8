"""Beamwarden: a self-hosted platform for fleets of sensor nodes.

Rooms (see DESIGN.md): ``protocol`` (the wire contract), ``sensors`` and ``fleet`` (pure rules),
``obs`` (embedded observability), ``agent`` (pi-log) and ``server``.
"""

__version__ = "0.1.0"
