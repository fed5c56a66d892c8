"""Room: server (wiring). The ``beamwarden`` command line."""
