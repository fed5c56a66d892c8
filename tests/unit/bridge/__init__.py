"""Unit tests of the MQTT bridge: no broker, no database, a fake clock."""
