"""Room: protocol (pure). The exceptions of the wire contract.

Exception tree::

    ProtocolError                     base of everything this room raises
    ├── SchemaViolation               a message breaks the contract; ``issues`` names every problem
    │   └── BatchTooLarge             more readings in one batch than the limit allows
    └── UnsupportedProtocolVersion    another major version than ours
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in a message: which item of a batch (``None`` for a single message), which field
    (a dotted path, ``""`` for the item itself) and what is wrong, for a person."""

    index: int | None
    field: str
    message: str

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"field": self.field, "message": self.message}
        if self.index is not None:
            out["index"] = self.index
        return out


class ProtocolError(Exception):
    """Base of every error of the protocol room."""


class SchemaViolation(ProtocolError):
    """A message does not follow the contract. ``issues`` lists every problem found."""

    def __init__(
        self, issues: list[Issue], message: str = "the request does not follow the schema"
    ):
        super().__init__(message)
        self.message = message
        self.issues = issues


class BatchTooLarge(SchemaViolation):
    """A batch holds more readings than the server accepts in one request."""

    def __init__(self, count: int, limit: int):
        super().__init__(
            [Issue(None, "", f"{count} readings in one batch; at most {limit} are accepted")],
            f"batch of {count} readings exceeds the limit of {limit}; split it",
        )
        self.count = count
        self.limit = limit


class UnsupportedProtocolVersion(ProtocolError):
    """The sender speaks a major protocol version this server does not."""

    def __init__(self, version: str):
        super().__init__(f"protocol version {version!r} is not supported; this server speaks 1.x")
        self.version = version
