"""Unit tests of ``sensors.geiger_sim``: the MightyOhm firmware's averaging, second by second."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamwarden.protocol import GeigerMode
from beamwarden.sensors import GeigerReading, GeigerSimulator, firmware_line, parse_geiger_line
from beamwarden.sensors.geiger_sim import BANNER, LINE_END


def feed(sim: GeigerSimulator, counts: list[int]) -> list[GeigerReading]:
    return [sim.second(c) for c in counts]


def test_slow_cpm_is_the_sum_of_the_last_60_seconds() -> None:
    sim = GeigerSimulator()
    readings = feed(sim, [10] * 60)
    assert readings[0] == GeigerReading(10, 10, 0.05, GeigerMode.SLOW)
    assert readings[-1] == GeigerReading(10, 600, 3.42, GeigerMode.SLOW)
    assert sim.second(0) == GeigerReading(0, 590, 3.36, GeigerMode.SLOW)  # the oldest 10 left
    for _ in range(58):
        sim.second(0)
    assert sim.second(0) == GeigerReading(0, 0, 0.0, GeigerMode.SLOW)


def test_fast_when_the_five_second_cpm_exceeds_1000() -> None:
    sim = GeigerSimulator()
    # 5 seconds summing to 83: 83 × 12 = 996 is not above 1000
    assert feed(sim, [17, 17, 17, 16, 16])[-1] == GeigerReading(16, 83, 0.47, GeigerMode.SLOW)
    sim = GeigerSimulator()
    # 84 × 12 = 1008: FAST, and the CPM reported is the 5-second one
    assert feed(sim, [17, 17, 17, 17, 16])[-1] == GeigerReading(16, 1008, 5.74, GeigerMode.FAST)
    # the window is the last 5 seconds only: one quiet second later it is 67 × 12 = 804
    assert sim.second(0) == GeigerReading(0, 84, 0.47, GeigerMode.SLOW)


def test_inst_when_a_second_does_not_fit_the_buffer() -> None:
    sim = GeigerSimulator()
    assert sim.second(255) == GeigerReading(255, 3060, 17.44, GeigerMode.FAST)
    assert sim.second(256) == GeigerReading(256, 15360, 87.55, GeigerMode.INST)
    # the buffer kept 255 for that second: the 5-second sum is 255 + 255 + 1
    assert sim.second(1) == GeigerReading(1, 511 * 12, 34.95, GeigerMode.FAST)


def test_a_second_counts_at_most_65535() -> None:
    sim = GeigerSimulator()
    assert sim.second(70_000) == GeigerReading(65535, 3_932_100, 22412.97, GeigerMode.INST)


def test_the_dose_is_truncated_not_rounded() -> None:
    sim = GeigerSimulator()
    # 17 CPM × 0.0057 = 0.0969 µSv/h → 0.09
    assert feed(sim, [17] + [0] * 4)[-1] == GeigerReading(0, 17, 0.09, GeigerMode.SLOW)


def test_another_tube_scale() -> None:
    sim = GeigerSimulator(scale=100)  # 0.01 µSv/h per CPM
    assert sim.second(50) == GeigerReading(50, 50, 0.5, GeigerMode.SLOW)


def test_negative_input_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not negative"):
        GeigerSimulator().second(-1)
    with pytest.raises(ValueError, match="not negative"):
        GeigerSimulator(scale=-1)


def test_firmware_line() -> None:
    assert firmware_line(GeigerReading(12, 702, 4.0, GeigerMode.SLOW)) == (
        "CPS, 12, CPM, 702, uSv/hr, 4.00, SLOW"
    )
    assert firmware_line(GeigerReading(0, 17, 0.09, GeigerMode.SLOW)) == (
        "CPS, 0, CPM, 17, uSv/hr, 0.09, SLOW"
    )
    assert all(parse_geiger_line(line + LINE_END) is None for line in BANNER)


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means of a background count."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def test_a_seeded_background_is_reproducible_and_plausible() -> None:
    def run(seed: int) -> list[GeigerReading]:
        rng, sim = random.Random(seed), GeigerSimulator()
        return [sim.second(poisson(rng, 0.4)) for _ in range(600)]  # ~24 CPM, 10 minutes

    first = run(7)
    assert first == run(7)
    assert all(r.mode is GeigerMode.SLOW for r in first)
    late = [r.cpm for r in first[60:]]
    assert 10 < sum(late) / len(late) < 40


@given(st.lists(st.integers(0, 70_000) | st.integers(0, 30), max_size=150))
def test_every_line_the_firmware_prints_parses_back(counts: list[int]) -> None:
    sim = GeigerSimulator()
    for count in counts:
        reading = sim.second(count)
        assert parse_geiger_line(firmware_line(reading) + LINE_END) == reading
