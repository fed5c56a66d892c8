"""Unit tests of the ASGI and WSGI apps, the request-metrics middleware and the thin adapters
(FastAPI/Starlette, Flask, Django), all in process (httpx transports and test clients)."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest
from fastapi import FastAPI

from beamwarden.obs import (
    ManualClock,
    MemoryStore,
    MetricRegistry,
    ObsAsgiApp,
    ObsEndpoints,
    ObsWsgiApp,
    RequestMetricsMiddleware,
    mount_obs,
    mount_obs_flask,
    new_log_record,
    obs_urlpatterns,
)

T0 = 1_800_000_000.0


@pytest.fixture
def endpoints() -> ObsEndpoints:
    store = MemoryStore()
    store.append_logs([new_log_record("info", f"m{i}", ts=T0 + i) for i in range(2500)])
    return ObsEndpoints(store, clock=ManualClock(T0), page_size=1000)


async def test_asgi_streams_and_compresses(endpoints: ObsEndpoints) -> None:
    transport = httpx.ASGITransport(app=ObsAsgiApp(endpoints))
    async with httpx.AsyncClient(transport=transport, base_url="http://obs") as client:
        response = await client.get("/logs", params={"limit": "2500"})
        assert response.status_code == 200
        assert len(response.text.splitlines()) == 2500
        raw = await client.get("/logs?limit=3", headers={"accept-encoding": "gzip"})
        assert raw.headers["content-encoding"] == "gzip"
        assert [json.loads(x)["message"] for x in raw.text.splitlines()] == ["m0", "m1", "m2"]
        bad = await client.get("/logs?limit=nope")
        assert bad.status_code == 400
        assert bad.json()["error"]["details"] == {"parameter": "limit"}


async def test_asgi_lifespan_is_answered(endpoints: ObsEndpoints) -> None:
    sent: list[dict[str, object]] = []
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, object]:
        return next(incoming)

    async def send(message: dict[str, object]) -> None:  # type: ignore[misc]
        sent.append(message)

    await ObsAsgiApp(endpoints)({"type": "lifespan"}, receive, send)  # type: ignore[arg-type]
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


def test_wsgi_serves_the_same(endpoints: ObsEndpoints) -> None:
    with httpx.Client(
        transport=httpx.WSGITransport(app=ObsWsgiApp(endpoints)), base_url="http://obs"
    ) as client:
        response = client.get("/logs.json?limit=2", headers={"accept-encoding": "gzip"})
        assert response.status_code == 200
        assert [i["message"] for i in response.json()["items"]] == ["m0", "m1"]
        assert client.get("/nope").status_code == 404
        assert client.get("/health").json()["status"] == "ok"


async def test_fastapi_mount_and_request_metrics_with_route_templates(
    endpoints: ObsEndpoints,
) -> None:
    app = FastAPI()
    registry = MetricRegistry(clock=ManualClock(T0))

    @app.get("/nodes/{node_id}")
    async def node(node_id: str) -> dict[str, str]:
        return {"node": node_id}

    mount_obs(app, ObsAsgiApp(endpoints), "/obs", request_metrics=registry)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        for node_id in ["a", "b", "c"]:
            assert (await client.get(f"/nodes/{node_id}")).json() == {"node": node_id}
        logs = await client.get("/obs/logs.json?limit=1")
        assert logs.json()["items"][0]["message"] == "m0"
        assert (await client.get("/random/path/42")).status_code == 404
        assert (await client.request("BREW", "/nodes/x")).status_code == 405
    counts = {
        tuple(sorted(s.labels)): s.value
        for s in registry.latest_samples()
        if s.name == "http_requests_total"
    }
    assert counts == {
        (("method", "GET"), ("route", "/nodes/{node_id}"), ("status", "200")): 3.0,
        (("method", "GET"), ("route", "/obs/{path}"), ("status", "200")): 1.0,
        (("method", "GET"), ("route", "<unmatched>"), ("status", "404")): 1.0,
        (("method", "OTHER"), ("route", "/nodes/{node_id}"), ("status", "405")): 1.0,
    }


async def test_middleware_bounds_routes_and_counts_crashes() -> None:
    registry = MetricRegistry(clock=ManualClock(T0))
    ticks = iter(range(100))

    async def crashing_app(scope: object, receive: object, send: object) -> None:
        raise RuntimeError("boom")

    middleware = RequestMetricsMiddleware(
        crashing_app,  # type: ignore[arg-type]
        registry,
        route_of=lambda scope: str(scope["path"]),
        max_routes=2,
        timer=lambda: float(next(ticks)),
    )
    for path in ["/a", "/b", "/c", "/d"]:
        with pytest.raises(RuntimeError):
            await middleware({"type": "http", "method": "GET", "path": path}, None, None)  # type: ignore[arg-type]
    routes = {
        (dict(s.labels)["route"], dict(s.labels)["status"]): s.value
        for s in registry.latest_samples()
        if s.name == "http_requests_total"
    }
    assert routes == {("/a", "500"): 1.0, ("/b", "500"): 1.0, ("<other>", "500"): 2.0}
    seconds = {
        dict(s.labels)["route"]: s.value.sum  # type: ignore[union-attr]
        for s in registry.latest_samples()
        if s.name == "http_request_duration_seconds"
    }
    assert seconds == {"/a": 1.0, "/b": 1.0, "<other>": 2.0}


def test_flask_adapter(endpoints: ObsEndpoints) -> None:
    flask = pytest.importorskip("flask", reason="Flask is an optional dev dependency")
    app = flask.Flask("t")

    @app.get("/")
    def home() -> str:
        return "home"

    mount_obs_flask(app, ObsWsgiApp(endpoints), "/obs")
    client = app.test_client()
    assert client.get("/").data == b"home"
    answer = client.get("/obs/logs?limit=2", headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200
    assert len(gzip.decompress(answer.data).splitlines()) == 2


def test_django_adapter(endpoints: ObsEndpoints) -> None:
    pytest.importorskip("django", reason="Django is an optional dev dependency")
    from django.conf import settings

    if not settings.configured:
        settings.configure(ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, DEBUG=False)
    from django.test import RequestFactory

    (pattern,) = obs_urlpatterns(endpoints)
    match = pattern.resolve("obs/logs")
    request = RequestFactory().get("/obs/logs", {"limit": "2"})
    response = match.func(request, **match.kwargs)
    assert response.status_code == 200
    assert len(b"".join(response.streaming_content).splitlines()) == 2
    bad = match.func(RequestFactory().get("/obs/logs", {"limit": "x"}), **match.kwargs)
    assert bad.status_code == 400
