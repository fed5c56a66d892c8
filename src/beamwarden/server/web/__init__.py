"""Room: server/web (imports services, fleet). The dashboard; built by the dashboard issue."""
