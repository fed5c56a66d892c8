"""Room: server/api (imports services, protocol). One router per resource; errors → HTTP."""
