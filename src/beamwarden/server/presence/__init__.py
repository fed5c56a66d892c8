"""Room: server/presence (adapter). In-process or Redis presence and leases; built by the fleet issue."""
