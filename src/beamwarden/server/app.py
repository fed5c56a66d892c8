"""Room: server (wiring). create_app(settings): the only place that wires concrete adapters."""
