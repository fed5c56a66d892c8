"""Unit tests of ``sensors.geiger``: the MightyOhm serial line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamwarden.protocol import GeigerMode
from beamwarden.sensors import DecodeError, GeigerReading, parse_geiger_line


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("CPS, 12, CPM, 702, uSv/hr, 4.00, SLOW\r\n", GeigerReading(12, 702, 4.0, GeigerMode.SLOW)),
        ("CPS, 0, CPM, 17, uSv/hr, 0.09, SLOW", GeigerReading(0, 17, 0.09, GeigerMode.SLOW)),
        ("CPS, 90, CPM, 1020, uSv/hr, 5.81, FAST", GeigerReading(90, 1020, 5.81, GeigerMode.FAST)),
        (
            "CPS, 300, CPM, 18000, uSv/hr, 102.60, INST",
            GeigerReading(300, 18000, 102.6, GeigerMode.INST),
        ),
        ("cps,3,cpm,41,usv/HR,0.23,slow", GeigerReading(3, 41, 0.23, GeigerMode.SLOW)),
        (
            " \tCPS ,  3 , CPM\t, 41 ,uSv/hr , 0.23 , Inst \t",
            GeigerReading(3, 41, 0.23, GeigerMode.INST),
        ),
        ("CPS, 1, CPM, 20, uSv/hr, 0.1, SLOW", GeigerReading(1, 20, 0.1, GeigerMode.SLOW)),
        ("CPS, 1, CPM, 20, uSv/hr, 1, fast", GeigerReading(1, 20, 1.0, GeigerMode.FAST)),
        (b"CPS, 7, CPM, 420, uSv/hr, 2.39, SLOW\r\n", GeigerReading(7, 420, 2.39, GeigerMode.SLOW)),
    ],
)
def test_reading(line: str | bytes, expected: GeigerReading) -> None:
    assert parse_geiger_line(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "",
        "\r\n",
        "   \t",
        "# mightyohm.com Geiger Counter 1.00\r\n",
        "# http://mightyohm.com/geiger",
        b"#\r\n",
        b"",
    ],
)
def test_banner_and_blank_lines_are_no_reading(line: str | bytes) -> None:
    assert parse_geiger_line(line) is None


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("CPS, 12, CPM, 702, uSv/hr, 4.00", "7 comma-separated fields, not 6"),
        ("CPS, 12, CPM, 702, uSv/hr, 4.00, SLOW, extra", "7 comma-separated fields, not 8"),
        ("CPS, -1, CPM, 702, uSv/hr, 4.00, SLOW", "not a Geiger line"),
        ("CPS, 12, CPM, 702, uSv/hr, -4.00, SLOW", "not a Geiger line"),
        ("CPS, 12, CPM, 702, uSv/hr, 4.00, MEDIUM", "not a Geiger line"),
        ("CPX, 12, CPM, 702, uSv/hr, 4.00, SLOW", "not a Geiger line"),
        ("CPS, 12, CPM, 7e2, uSv/hr, 4.00, SLOW", "not a Geiger line"),
        ("CPS, 12.5, CPM, 702, uSv/hr, 4.00, SLOW", "not a Geiger line"),
        ("CPS, 12, CPM, 702, uSv/hr, .5, SLOW", "not a Geiger line"),
        ("CPS, 12, CPM, 702, uSv/hr, nan, SLOW", "not a Geiger line"),
        ("CPS, ١٢, CPM, 702, uSv/hr, 4.00, SLOW", "not a Geiger line"),  # Arabic-Indic digits
        ("CPſ, 12, CPM, 702, uSv/hr, 4.00, SLOW", "not a Geiger line"),  # ſ upper-cases to S
        ("CPS, 12345678901, CPM, 702, uSv/hr, 4.00, SLOW", "not a Geiger line"),
        ("CPS 12 CPM 702 uSv/hr 4.00 SLOW", "7 comma-separated fields, not 1"),
        ("mightyohm.com Geiger Counter 1.00", "7 comma-separated fields, not 1"),
    ],
)
def test_malformed(line: str, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        parse_geiger_line(line)


def test_bytes_must_be_ascii() -> None:
    with pytest.raises(DecodeError, match="ASCII"):
        parse_geiger_line(b"CPS, 1\xff, CPM, 2, uSv/hr, 0.01, SLOW")


def test_payload_uses_the_protocol_vocabulary() -> None:
    reading = GeigerReading(12, 702, 4.0, GeigerMode.FAST)
    assert reading.payload() == {"cps": 12, "cpm": 702, "usv_per_hour": 4.0, "mode": "FAST"}
    assert reading.sensor_type == "geiger"


@given(st.text(max_size=80))
def test_any_text_gives_a_reading_none_or_decode_error(text: str) -> None:
    try:
        out = parse_geiger_line(text)
    except DecodeError:
        return
    assert out is None or isinstance(out, GeigerReading)


@given(st.binary(max_size=80))
def test_any_bytes_gives_a_reading_none_or_decode_error(data: bytes) -> None:
    try:
        out = parse_geiger_line(data)
    except DecodeError:
        return
    assert out is None or isinstance(out, GeigerReading)


_SPACE = st.text(alphabet=" \t", max_size=2)


def _case(draw: st.DrawFn, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.swapcase() if f else c for c, f in zip(word, flips, strict=True))


@st.composite
def well_formed(draw: st.DrawFn) -> tuple[str, GeigerReading]:
    cps = draw(st.integers(0, 65535))
    cpm = draw(st.integers(0, 3_932_100))
    hundredths = draw(st.integers(0, 2_241_297))
    mode = draw(st.sampled_from(list(GeigerMode)))
    words = [
        _case(draw, "CPS"),
        str(cps),
        _case(draw, "CPM"),
        str(cpm),
        _case(draw, "uSv/hr"),
        f"{hundredths // 100}.{hundredths % 100:02d}",
        _case(draw, mode.value),
    ]
    line = ",".join(draw(_SPACE) + w + draw(_SPACE) for w in words)
    return line, GeigerReading(cps, cpm, hundredths / 100, mode)


@given(well_formed())
def test_every_well_formed_line_is_read(case: tuple[str, GeigerReading]) -> None:
    line, expected = case
    assert parse_geiger_line(line + "\r\n") == expected
