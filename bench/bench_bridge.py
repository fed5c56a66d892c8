"""MQTT bridge: gateway messages/s bridged into the store, and advertisement → stored latency.

Figure (issue 5): >= 10 000 messages/s bridged into the store; from advertisement to stored
reading < 5 s. The real path: Mosquitto on 127.0.0.1:1883 → the bridge's MQTT subscriber →
decode → dedup → the ingest service (the same call ``POST /api/readings`` makes) → a durable
group commit into a throwaway SQLite file (default) or PostgreSQL database. Its topics have a
prefix of their own, so other users of the broker are not disturbed.

* throughput: a publisher in a process of its own (a raw socket, see ``PUBLISHER``) sends ``-n``
  OpenMQTTGateway ``BTtoMQTT`` messages (1000 devices, every message a new measurement, so none
  is a duplicate; the devices are new, so their discovery is part of the run) at QoS 0 (as
  gateways publish), paced at ``--rate`` per second (a blast would only measure what the broker
  drops for a slow subscriber); the figure is messages stored durably per second, from the first
  publish to the last commit, and ``lost`` must be 0. With ``--rate`` above what the bridge can
  take, the figure is its capacity. ``bridge_cpu_us_per_message`` is this process's CPU time
  (receive, decode, ingest; not the SQLite writer's process) per message: on a shared machine it
  moves less with the load than the rate does. The bridge runs on uvloop, as ``beamwarden serve``
  and ``beamwarden bridge`` do;
* latency: then ``--latency-n`` single advertisements, one every 50 ms, each timed from its
  publish to the commit that stored it (the bridge's counter of stored readings moves only after
  the store's durable commit).

Run (prints ONE JSON line; progress on stderr):

    .venv/bin/python bench/bench_bridge.py                    # SQLite, 60 000 at 15 000/s
    .venv/bin/python bench/bench_bridge.py --backend postgresql -n 100000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import secrets
import statistics
import subprocess
import sys
import time
from typing import Any

import aiomqtt
import uvloop

import _harness
from beamwarden.server.bridge import BridgeConfig, MqttBridge
from beamwarden.server.metrics import ServerMetrics
from beamwarden.server.presence import open_presence
from beamwarden.server.services.clock import SystemClock
from beamwarden.server.services.container import ServiceConfig, Services
from beamwarden.server.store import StoreConfig, open_store, upgrade
from beamwarden.server.store.devices import DeviceSqlStore

BROKER = ("127.0.0.1", 1883)
BARS = {
    "messages_per_s": (">=", 10_000.0),
    "lost": ("<", 1.0),
    "latency_p99_ms": ("<", 5000.0),
}
DEVICES = 1000


def _lines(prefix: str, n: int) -> bytes:
    """``n`` JSON advertisements from 1000 devices, each a new measurement."""
    out = []
    for i in range(n):
        device = i % DEVICES
        mac = f"A4:C1:38:{device >> 16 & 255:02X}:{device >> 8 & 255:02X}:{device & 255:02X}"
        temp = round(-20 + (i // DEVICES) * 0.01, 2)
        out.append(
            json.dumps(
                {"id": mac, "name": "GVH5075", "rssi": -70, "tempc": temp, "hum": 40.0, "batt": 90}
            )
        )
    return ("\n".join(out) + "\n").encode()


async def _wait_stored(bridge: MqttBridge, target: int, limit_s: float) -> float:
    """Wait until ``target`` readings are stored; return when (perf_counter)."""
    deadline = time.perf_counter() + limit_s
    stats = bridge.relay.stats
    while stats.stored + stats.store_duplicates < target:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{stats.stored} of {target} stored after {limit_s:.0f} s: {stats}")
        await asyncio.sleep(0.001)
    return time.perf_counter()


#: a paced publisher (its own process): stdin lines → QoS 0 PUBLISH packets at ``rate`` per second.
#: Written on a raw socket (MQTT 3.1.1), as a fleet of gateways would send them: a paho publisher
#: in Python topped out near 11 000 messages/s and took CPU the bridge needs on a 2-core machine.
#: Every message is still its own PUBLISH, routed by Mosquitto to the bridge one by one.
PUBLISHER = """
import socket, sys, time
host, port, topic, rate = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), int(sys.argv[4])
def varint(n):
    out = bytearray()
    while True:
        b, n = n & 127, n >> 7
        out.append(b | 128 if n else b)
        if not n:
            return bytes(out)
def packet(header, body):
    return bytes((header,)) + varint(len(body)) + body
def s(raw):
    return len(raw).to_bytes(2, "big") + raw
lines = sys.stdin.buffer.read().splitlines()
sock = socket.create_connection((host, port))
sock.sendall(packet(0x10, s(b"MQTT") + bytes((4, 2)) + (60).to_bytes(2, "big") + s(sys.argv[3].split("/")[0].encode() + b"-pub")))
assert sock.recv(4) == b"\\x20\\x02\\x00\\x00", "no CONNACK"
packets = [packet(0x30, s(topic) + line) for line in lines]
t0 = time.perf_counter()
for i in range(0, len(packets), 50):
    sock.sendall(b"".join(packets[i : i + 50]))
    ahead = t0 + (i + 50) / rate - time.perf_counter()
    if ahead > 0:
        time.sleep(ahead)
sock.sendall(b"\\xe0\\x00")
sock.close()
"""


async def run(url: str, n: int, latency_n: int, rate: int) -> dict[str, Any]:
    await asyncio.to_thread(upgrade, url)
    store = await open_store(StoreConfig(url))
    presence = open_presence("memory", "bench", 5.0)
    services = Services.build(
        store,
        SystemClock(),
        ServerMetrics(),
        ServiceConfig(),
        presence,
        device_store=DeviceSqlStore(store.engine),
    )
    services.committer.start()
    prefix = f"bwbench-{secrets.token_hex(4)}"
    config = BridgeConfig(
        *BROKER, topics=(f"{prefix}/#",), strip_prefix=f"{prefix}/", name="bench-bridge"
    )
    bridge = MqttBridge(services, config)
    gc.collect()  # what start-up made is frozen, as beamwarden serve and bridge do (gc_freeze)
    gc.freeze()
    task = asyncio.create_task(bridge.run())
    try:
        await asyncio.wait_for(bridge.subscribed.wait(), 15)
        payload = _lines(prefix, n)
        _harness.log(f"publishing {n} messages at {rate}/s from a raw-socket publisher process")
        started = time.perf_counter()
        cpu_before = time.process_time()  # this process: receive, decode, ingest (not the writer)
        pub = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PUBLISHER, BROKER[0], str(BROKER[1]),
            f"{prefix}/home/bench-gw/BTtoMQTT", str(rate),
            stdin=subprocess.PIPE,
        )  # fmt: skip
        await pub.communicate(payload)
        published = time.perf_counter()
        try:
            done = await _wait_stored(bridge, n, 30)
        except TimeoutError as exc:
            _harness.log(f"not all stored: {exc}")
            done = time.perf_counter()
        cpu_s = time.process_time() - cpu_before
        stats = bridge.relay.stats
        elapsed = done - started
        stored, received = stats.stored, stats.messages  # before the latency run adds to them
        _harness.log(
            f"{n} stored in {elapsed:.2f} s (publisher done after {published - started:.2f} s)"
        )
        latencies: list[float] = []
        async with aiomqtt.Client(*BROKER, identifier=f"{prefix}-lat") as client:
            for i in range(latency_n):
                before = stats.stored
                mac = f"A4:C1:38:FF:00:{i % 256:02X}"
                body = json.dumps({"id": mac, "tempc": 50.0 + i / 100, "rssi": -50}).encode()
                sent = time.perf_counter()
                await client.publish(f"{prefix}/home/lat-gw/BTtoMQTT", body, qos=1)
                stored_at = await _wait_stored(bridge, before + stats.store_duplicates + 1, 10)
                latencies.append((stored_at - sent) * 1000)
                await asyncio.sleep(0.05)
        lat = sorted(latencies)
        return {
            "messages": n,
            "stored": stored,
            "duplicates": stats.duplicates + stats.store_duplicates,
            "dropped": stats.dropped_buffer_full + stats.dropped_invalid,
            "seconds": round(elapsed, 3),
            "offered_per_s": rate,
            "messages_per_s": round(stored / elapsed, 1),
            "lost": n - received,
            "publish_s": round(published - started, 3),
            "bridge_cpu_us_per_message": round(cpu_s / n * 1e6, 1),
            "batches": stats.batches,
            "latency_n": latency_n,
            "latency_p50_ms": round(statistics.median(lat), 1),
            "latency_p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
            "latency_max_ms": round(lat[-1], 1),
            "mqtt": "5" if bridge.protocol == 5 else "3.1.1",
        }
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await services.committer.stop()
        await presence.close()
        await store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("-n", type=int, default=60_000, help="messages for the throughput run")
    parser.add_argument("--latency-n", type=int, default=100, help="paced single messages")
    parser.add_argument("--rate", type=int, default=15_000, help="messages/s offered")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    _harness.install_signal_handlers()
    result = _harness.header(
        "bridge",
        {"n": args.n, "rate": args.rate, "latency_n": args.latency_n, "backend": args.backend},
    )
    with _harness.database(args.backend) as db:
        figures = uvloop.run(run(db.url, args.n, args.latency_n, args.rate))
    result.update(figures)
    result["bars"] = {
        key: {
            "bar": f"{op} {value:g}",
            "met": figures[key] >= value if op == ">=" else figures[key] < value,
        }
        for key, (op, value) in BARS.items()
    }
    _harness.emit(result)
    return 0 if all(b["met"] for b in result["bars"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
