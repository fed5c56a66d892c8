"""Unit tests of the pure fleet rules (no clock, no I/O)."""
