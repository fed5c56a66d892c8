"""Room: sensors (pure). The exceptions of the sensor decoders.

Exception tree::

    DecodeError (ValueError)      bad input: a line, payload or message that cannot be read
    └── UnsupportedPayload        maybe well formed, but no decoder here knows it
                                  (another Govee model, an unrelated BLE advertisement, ...)

A caller that hears everything (a gateway relays every advertisement in range) skips
``UnsupportedPayload`` quietly and counts the other ``DecodeError``\\ s as bad data.
"""

from __future__ import annotations


class DecodeError(ValueError):
    """The input cannot be decoded; the message says why, for a person."""


class UnsupportedPayload(DecodeError):
    """No decoder of this room knows this payload (a model or a layout it does not read)."""
