"""Unit tests of ``sensors.ids``: one spelling of a device's MAC."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamwarden.sensors import DecodeError, ble_device_id, govee_device_ids, normalise_mac


@pytest.mark.parametrize(
    "mac", ["A4:C1:38:12:34:56", "a4:c1:38:12:34:56", "a4-c1-38-12-34-56", "A4C138123456"]
)
def test_every_spelling_gives_one_id(mac: str) -> None:
    assert normalise_mac(mac) == "A4C138123456"
    assert ble_device_id(mac) == "ble:A4C138123456"


@pytest.mark.parametrize(
    "mac",
    [
        "",
        "A4:C1:38:12:34",
        "A4:C1:38:12:34:56:78",
        "A4:C1-38:12:34:56",
        "G4:C1:38:12:34:56",
        "A4:C1:38:12:34:5",
        "61DE521B-F0BF-9F44-64D4-75BBE1738105",
        "A4::C1:38:12:34:56",
    ],
)
def test_not_a_mac(mac: str) -> None:
    with pytest.raises(DecodeError):
        normalise_mac(mac)


def test_govee_id_ends_in_the_mac() -> None:
    assert govee_device_ids("1F:80:A4:C1:38:12:34:56") == (
        "ble:A4C138123456",
        "govee:1F80A4C138123456",
    )
    assert govee_device_ids("1f80a4c138123456") == (
        "ble:A4C138123456",
        "govee:1F80A4C138123456",
    )


@pytest.mark.parametrize("govee_id", ["A4:C1:38:12:34:56", "1F:80:A4:C1:38:12:34:56:00", "zz"])
def test_not_a_govee_id(govee_id: str) -> None:
    with pytest.raises(DecodeError):
        govee_device_ids(govee_id)


@given(st.binary(min_size=6, max_size=6), st.sampled_from([":", "-", ""]), st.booleans())
def test_any_mac_round_trips(raw: bytes, sep: str, lower: bool) -> None:
    text = sep.join(f"{b:02X}" for b in raw)
    assert ble_device_id(text.lower() if lower else text) == "ble:" + raw.hex().upper()


@given(st.text(max_size=30))
def test_any_text_gives_an_id_or_decode_error(text: str) -> None:
    try:
        out = normalise_mac(text)
    except DecodeError:
        return
    assert len(out) == 12
    assert out == out.upper()
