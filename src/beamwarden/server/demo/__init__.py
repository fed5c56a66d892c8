"""Room: server (demo). ``beamwarden demo``: the server on SQLite and a real pi-log agent per node.

* :mod:`.agents` — each demo node's agent config, and the supervisor of one ``pi-log run``
  process (started as a child process: the server never imports the agent).
* :mod:`.runner` — the orchestration: prepare the inventory and tokens, serve the app in-process,
  start the agents, stop everything cleanly on Ctrl-C or SIGTERM.
"""
