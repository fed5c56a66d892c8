"""Unit tests of ``protocol.versions``."""

from __future__ import annotations

import pytest

from beamwarden.protocol import (
    CURRENT,
    Issue,
    ProtocolError,
    SchemaViolation,
    UnsupportedProtocolVersion,
    VersionVerdict,
    check_protocol_version,
)


def test_current_is_1_0() -> None:
    assert CURRENT == "1.0"


def test_none_means_the_current_version() -> None:
    assert check_protocol_version(None) == VersionVerdict("1.0", None)


@pytest.mark.parametrize("version", ["1.0", "1.7", "1.10", "1.9999"])
def test_any_minor_of_major_1_is_accepted(version: str) -> None:
    assert check_protocol_version(version) == VersionVerdict(version)


@pytest.mark.parametrize("version", ["2.0", "0.9", "0.0", "3.1", "9999.0"])
def test_another_major_is_unsupported(version: str) -> None:
    with pytest.raises(UnsupportedProtocolVersion) as info:
        check_protocol_version(version)
    assert info.value.version == version
    assert (
        str(info.value) == f"protocol version {version!r} is not supported; this server speaks 1.x"
    )
    assert isinstance(info.value, ProtocolError)
    assert not isinstance(info.value, SchemaViolation)


@pytest.mark.parametrize(
    "version",
    [
        "",
        "1",
        "1.",
        ".1",
        "1.0.0",
        "v1.0",
        "01.0",
        "1.01",
        "1.0 ",
        " 1.0",
        "1.0\n",
        "1,0",
        "1.x",
        "10000.0",
        "1.10000",
        "١.٠",
    ],
)
def test_malformed_version_is_a_schema_violation(version: str) -> None:
    with pytest.raises(SchemaViolation) as info:
        check_protocol_version(version)
    assert info.value.issues == [Issue(None, "protocol_version", 'must look like "1.0"')]


def test_deprecated_minor_is_accepted_with_a_warning() -> None:
    verdict = check_protocol_version("1.3", deprecated_minors=frozenset({3}))
    assert verdict == VersionVerdict(
        "1.3", '299 beamwarden "protocol 1.3 is deprecated; upgrade to 1.0"'
    )


def test_a_minor_not_deprecated_has_no_warning() -> None:
    assert check_protocol_version("1.4", deprecated_minors=frozenset({3})).warning is None


def test_deprecating_a_minor_does_not_rescue_another_major() -> None:
    with pytest.raises(UnsupportedProtocolVersion):
        check_protocol_version("2.3", deprecated_minors=frozenset({3}))


def test_nothing_is_deprecated_by_default() -> None:
    assert all(check_protocol_version(f"1.{m}").warning is None for m in range(50))
