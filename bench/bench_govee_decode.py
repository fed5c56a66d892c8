"""Govee decoding: BLE payloads decoded per second on one core.

Figure (issue 5, "Figures and tests"): >= 200 000 Govee payloads/s decoded on one core.

What is timed: ``beamwarden.sensors.decode_govee`` over a fixed mix of 1 024 manufacturer-data
payloads as a gateway publishes them (company id first), in a tight loop, in this one process
(pinned to one CPU where the OS allows). The mix covers every layout: packed 24-bit (H5072/H5075,
the H5100 family, H5108), separate little-endian fields (H5051/H5071, H5074, H5179's first
firmware), some with the iBeacon record glued on, half with an advertised name (which picks the
model), negative temperatures included. Each run decodes for ``--seconds``; the figure is the
median of ``--runs`` runs (after one warm-up run); ``payloads_per_cpu_s`` is the same per second
of this process's CPU time, steadier when other work shares the cores. Nothing else is measured: no JSON, no MQTT.

Run (prints ONE JSON line; progress on stderr):

    .venv/bin/python bench/bench_govee_decode.py                 # 5 runs of 2 s
    .venv/bin/python bench/bench_govee_decode.py --runs 3 --seconds 1
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import time
from typing import Any

import _harness
from beamwarden.sensors import decode_govee

BARS = {"payloads_per_s": (">=", 200_000.0)}
IBEACON = bytes.fromhex("4c000215") + b"INTELLI_ROCKS_HW" + bytes.fromhex("5075f2ff0c")


def _packed(tenths: int, humidity_tenths: int) -> bytes:
    value = abs(tenths) * 1000 + humidity_tenths | (0x800000 if tenths < 0 else 0)
    return value.to_bytes(3, "big")


def _separate(centi: int, humidity_centi: int) -> bytes:
    return centi.to_bytes(2, "little", signed=True) + humidity_centi.to_bytes(2, "little")


def payload_mix(count: int, seed: int = 5) -> list[tuple[bytes, str | None]]:
    """``count`` (manufacturer data, advertised name) pairs covering every layout."""
    rng = random.Random(seed)
    out: list[tuple[bytes, str | None]] = []
    for i in range(count):
        t = rng.randint(-300, 450)  # tenths of °C
        h = rng.randint(0, 999)
        battery = bytes([rng.randint(1, 100)])
        kind = i % 6
        if kind == 0:
            data, name = b"\x88\xec\x00" + _packed(t, h) + battery + b"\x00", "GVH5075_2762"
        elif kind == 1:
            data, name = b"\x01\x00\x01\x01" + _packed(t, h) + battery, "GVH5102_0C0D"
        elif kind == 2:
            data, name = b"\x01\x00\x01\x01" + _packed(t, h) + battery + b"\x00\x00", "GV51085242"
        elif kind == 3:
            data, name = b"\x88\xec\x00" + _separate(t * 10, h * 10) + battery + b"\x02", None
        elif kind == 4:
            data, name = (
                b"\x88\xec\x00" + _separate(t * 10, h * 10) + battery + b"\x02\x01\x01",
                None,
            )
        else:
            data, name = b"\x01\x88\xec\x00\x01\x01" + _separate(t * 10, h * 10) + battery, None
        if i % 10 == 0:
            data += IBEACON
        if i % 2 and name is not None:
            name = None  # half of the named kinds go without a name (the family is reported)
        out.append((data, name))
    return out


def one_run(mix: list[tuple[bytes, str | None]], seconds: float) -> dict[str, float | None]:
    """Decode the mix over and over for ``seconds``; payloads per second."""
    decode = decode_govee
    decoded = 0
    start = time.perf_counter()
    cpu_start = time.process_time()
    deadline = start + seconds
    while True:
        for data, name in mix:
            decode(data, None, name)
        decoded += len(mix)
        now = time.perf_counter()
        if now >= deadline:
            break
    elapsed = now - start
    cpu = time.process_time() - cpu_start
    return {
        "payloads": decoded,
        "seconds": round(elapsed, 3),
        "payloads_per_s": round(decoded / elapsed, 1),
        "us_per_payload": round(elapsed / decoded * 1e6, 3),
        "cpu_util": round(cpu / elapsed, 3),
        # the same per second of this process's CPU time: steadier on a shared machine
        "payloads_per_cpu_s": round(decoded / cpu, 1) if cpu > 0 else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--payloads", type=int, default=1024)
    args = parser.parse_args(argv)
    pinned = None
    with contextlib.suppress(AttributeError, OSError):
        cpu = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {cpu})
        pinned = cpu
    mix = payload_mix(args.payloads)
    for data, name in mix:  # every payload of the mix decodes: the loop measures real work
        decode_govee(data, None, name)
    head = _harness.header(
        "govee_decode",
        {"runs": args.runs, "seconds": args.seconds, "payloads": args.payloads, "cpu": pinned},
    )
    one_run(mix, min(args.seconds, 0.5))  # warm-up
    runs = []
    for i in range(args.runs):
        runs.append(one_run(mix, args.seconds))
        _harness.log(f"run {i + 1}/{args.runs}: {runs[-1]['payloads_per_s']:,.0f} payloads/s")
    median = _harness.medians(
        runs, ["payloads_per_s", "payloads_per_cpu_s", "us_per_payload", "cpu_util"]
    )
    result: dict[str, Any] = {
        **head,
        "median": median,
        "bars": {k: f"{op} {bound:g}" for k, (op, bound) in BARS.items()},
        "meets_bars": (median["payloads_per_s"] or 0) >= BARS["payloads_per_s"][1],
        "runs": runs,
    }
    _harness.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
