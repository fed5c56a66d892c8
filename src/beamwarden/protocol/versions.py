"""Room: protocol (pure). Protocol versions: which are spoken, which are deprecated."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import Issue, SchemaViolation, UnsupportedProtocolVersion

CURRENT = "1.0"
MAJOR = 1
#: Minor versions still accepted but answered with a ``Warning`` header. None yet.
DEPRECATED_MINORS: frozenset[int] = frozenset()
_VERSION_RE = re.compile(r"(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})")


@dataclass(frozen=True, slots=True)
class VersionVerdict:
    version: str
    warning: str | None = None


def check_protocol_version(
    version: str | None, deprecated_minors: frozenset[int] = DEPRECATED_MINORS
) -> VersionVerdict:
    """Accept ``1.x`` (``None`` means the current version); refuse another major.

    Raises :class:`UnsupportedProtocolVersion` or, for a malformed string, :class:`SchemaViolation`.
    """
    if version is None:
        return VersionVerdict(CURRENT)
    match = _VERSION_RE.fullmatch(version)
    if match is None:
        raise SchemaViolation([Issue(None, "protocol_version", 'must look like "1.0"')])
    major, minor = int(match[1]), int(match[2])
    if major != MAJOR:
        raise UnsupportedProtocolVersion(version)
    if minor in deprecated_minors:
        return VersionVerdict(
            version, f'299 beamwarden "protocol {version} is deprecated; upgrade to {CURRENT}"'
        )
    return VersionVerdict(version)
