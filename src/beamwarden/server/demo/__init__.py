"""Room: server (demo). ``beamwarden demo``: the server on SQLite with simulated nodes, one process.

* :mod:`.simulator` — simulated nodes that speak only the wire protocol (``beamwarden.protocol``
  and HTTP); they never import the server, so the real agent can take their place.
* :mod:`.runner` — the orchestration: prepare the inventory and tokens, serve the app in-process,
  run the simulators, stop everything cleanly on Ctrl-C or SIGTERM.
"""
