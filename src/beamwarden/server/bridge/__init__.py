"""Room: server/bridge (imports services, sensors). The MQTT bridge; built by the sensors issue."""
