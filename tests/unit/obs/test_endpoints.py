"""Unit tests of the obs endpoints through the framework-neutral Request/Response."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beamwarden.obs import (
    Level,
    LogQuery,
    LogRecord,
    ManualClock,
    MemoryStore,
    MetricRegistry,
    ObsEndpoints,
    Request,
    Response,
    new_log_record,
    new_sample,
)

T0 = 1_800_000_000.0


def body(response: Response) -> bytes:
    return b"".join(response.body)


def lines(response: Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body(response).splitlines()]


def get(endpoints: ObsEndpoints, path: str, query: str = "", **headers: str) -> Response:
    return endpoints.handle(
        Request("GET", path, query, {k.replace("_", "-"): v for k, v in headers.items()})
    )


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    levels = [Level.DEBUG, Level.INFO, Level.WARNING, Level.ERROR]
    store.append_logs(
        [
            new_log_record(levels[i % 4], f"m{i}", ts=T0 + i, logger="app", attrs={"i": i})
            for i in range(20)
        ]
    )
    store.append_samples(
        [new_sample("jobs_total", "counter", float(i), ts=T0 + i) for i in range(1, 4)]
    )
    return store


@pytest.fixture
def endpoints(store: MemoryStore) -> ObsEndpoints:
    return ObsEndpoints(store, clock=ManualClock(T0 + 20), page_size=3)


def test_logs_stream_as_ndjson_with_filters(endpoints: ObsEndpoints) -> None:
    response = get(endpoints, "/logs", "since=15s&level=warning&limit=4")
    assert response.status == 200
    assert ("content-type", "application/x-ndjson") in response.headers
    items = lines(response)
    assert [i["message"] for i in items] == ["m6", "m7", "m10", "m11"]
    assert items[0] == {
        "id": items[0]["id"],
        "ts": T0 + 6,
        "time": "2027-01-15T08:00:06.000000+00:00",
        "level": "warning",
        "logger": "app",
        "message": "m6",
        "attrs": {"i": 6},
    }


def test_the_stream_pages_through_the_store(endpoints: ObsEndpoints) -> None:
    items = lines(get(endpoints, "/logs", "limit=100"))
    assert [i["message"] for i in items] == [f"m{i}" for i in range(20)]
    after = lines(get(endpoints, "/logs", f"cursor={items[16]['id']}"))
    assert [i["message"] for i in after] == ["m17", "m18", "m19"]


def test_logs_json_pages_with_next_cursor(endpoints: ObsEndpoints) -> None:
    first = json.loads(body(get(endpoints, "/logs.json", "limit=15")))
    assert len(first["items"]) == 15
    second = json.loads(
        body(get(endpoints, "/logs.json", f"limit=15&cursor={first['next_cursor']}"))
    )
    assert [i["message"] for i in second["items"]] == [f"m{i}" for i in range(15, 20)]
    assert second["next_cursor"] is None


def test_metrics_history_last_values_and_scrape(endpoints: ObsEndpoints) -> None:
    history = lines(get(endpoints, "/metrics", "since=18s"))
    assert [(i["name"], i["value"]) for i in history] == [("jobs_total", 2.0), ("jobs_total", 3.0)]
    latest = json.loads(body(get(endpoints, "/metrics.json")))
    assert latest == {
        "items": [
            {
                "id": latest["items"][0]["id"],
                "ts": T0 + 3,
                "name": "jobs_total",
                "kind": "counter",
                "labels": {},
                "value": 3.0,
            }
        ]
    }
    scrape = get(endpoints, "/metrics/prometheus")
    assert body(scrape) == b"# HELP jobs_total \n# TYPE jobs_total counter\njobs_total 3.0\n"
    om = get(endpoints, "/metrics/prometheus", accept="application/openmetrics-text")
    assert dict(om.headers)["content-type"].startswith("application/openmetrics-text")
    assert body(om).endswith(b"# EOF\n")


def test_a_registry_answers_scrapes_when_given(store: MemoryStore) -> None:
    registry = MetricRegistry(clock=ManualClock(T0))
    registry.gauge("live").set(7)
    endpoints = ObsEndpoints(store, registry=registry)
    assert b"live 7.0" in body(get(endpoints, "/metrics/prometheus"))
    assert [i["name"] for i in json.loads(body(get(endpoints, "/metrics.json")))["items"]] == [
        "live"
    ]


def test_health(endpoints: ObsEndpoints) -> None:
    answer = json.loads(body(get(endpoints, "/health")))
    assert answer["status"] == "ok"
    assert answer["store"]["logs"] == 20


@pytest.mark.parametrize(
    ("path", "query", "parameter"),
    [
        ("/logs", "since=yesterday", "since"),
        ("/logs", "level=loud", "level"),
        ("/logs", "limit=0", "limit"),
        ("/logs", "cursor=x", "cursor"),
        ("/logs", "limit=1&limit=2", "limit"),
        ("/logs", "bogus=1", "bogus"),
        ("/logs.json", "limit=20000", "limit"),
        ("/metrics", "name=a b", "name"),
        ("/metrics/prometheus", "x=1", "x"),
        ("/health", "x=1", "x"),
        ("/logs", "&".join(f"a{i}=1" for i in range(30)), ""),
    ],
)
def test_bad_parameters_are_400_with_a_json_error(
    endpoints: ObsEndpoints, path: str, query: str, parameter: str
) -> None:
    response = get(endpoints, path, query)
    assert response.status == 400
    error = json.loads(body(response))["error"]
    assert error["code"] == "invalid_parameter"
    assert error["details"] == {"parameter": parameter}


def test_unknown_paths_and_methods(endpoints: ObsEndpoints) -> None:
    assert get(endpoints, "/nope").status == 404
    post = endpoints.handle(Request("POST", "/logs"))
    assert post.status == 405
    assert ("allow", "GET, HEAD") in post.headers
    head = endpoints.handle(Request("HEAD", "/logs"))
    assert (head.status, body(head)) == (200, b"")
    assert get(endpoints, "/logs/").status == 200


def test_gzip_when_asked(endpoints: ObsEndpoints) -> None:
    plain = body(get(endpoints, "/logs", "limit=100"))
    zipped = get(endpoints, "/logs", "limit=100", accept_encoding="br, gzip;q=0.8")
    assert ("content-encoding", "gzip") in zipped.headers
    assert gzip.decompress(body(zipped)) == plain
    refused = get(endpoints, "/logs", accept_encoding="gzip;q=0")
    assert ("content-encoding", "gzip") not in refused.headers


class OneBadRecordStore(MemoryStore):
    """Hands out one record that cannot be encoded (attrs that are not JSON)."""

    def read_logs(self, query: LogQuery) -> list[LogRecord]:
        good = super().read_logs(query)
        if not good:
            return good
        bad = good[0]._replace(attrs={"x": object()})  # type: ignore[dict-item]
        return [bad, *good[1:]]


def test_one_bad_record_never_breaks_an_endpoint() -> None:
    store = OneBadRecordStore()
    store.append_logs([new_log_record("info", f"m{i}", ts=T0 + i) for i in range(3)])
    endpoints = ObsEndpoints(store)
    streamed = get(endpoints, "/logs")
    assert streamed.status == 200
    assert [i["message"] for i in lines(streamed)] == ["m1", "m2"]
    page = get(endpoints, "/logs.json")
    assert [i["message"] for i in json.loads(body(page))["items"]] == ["m1", "m2"]
    assert endpoints.bad_items == 2


class BrokenStore(MemoryStore):
    def __init__(self, fail_after: int) -> None:
        super().__init__()
        self.calls = 0
        self.fail_after = fail_after

    def read_logs(self, query: LogQuery) -> list[LogRecord]:
        self.calls += 1
        if self.calls > self.fail_after:
            raise OSError("disk gone")
        return super().read_logs(query)

    def stats(self) -> Any:
        raise OSError("disk gone")


def test_a_failing_store_is_503_or_ends_the_stream_with_an_error_line() -> None:
    store = BrokenStore(fail_after=1)
    store.append_logs([new_log_record("info", f"m{i}", ts=T0 + i) for i in range(5)])
    endpoints = ObsEndpoints(store, page_size=2)
    items = lines(get(endpoints, "/logs"))
    assert [i.get("message") for i in items] == ["m0", "m1", None]
    assert items[-1] == {"error": {"code": "store_unavailable", "message": "OSError"}}
    assert get(endpoints, "/logs.json").status == 503
    assert get(endpoints, "/health").status == 503


query_text = st.text(
    alphabet=st.sampled_from("abcdefghilmnorstuvy0123456789=&%-+.:TZ_ \x00é"), max_size=60
) | st.builds(
    lambda k, v: f"{k}={v}",
    st.sampled_from(["since", "level", "limit", "cursor", "name"]),
    st.text(max_size=25),
)


@settings(max_examples=200, deadline=None)
@given(
    path=st.sampled_from(
        ["/logs", "/logs.json", "/metrics", "/metrics.json", "/metrics/prometheus", "/health"]
    ),
    query=query_text,
)
def test_any_parameters_give_200_or_400_never_500(path: str, query: str) -> None:
    store = MemoryStore()
    store.append_logs([new_log_record("info", "m", ts=T0)])
    endpoints = ObsEndpoints(store, clock=ManualClock(T0))
    response = get(endpoints, path, query)
    data = body(response)
    assert response.status in {200, 400}, data
    if response.status == 400:
        assert json.loads(data)["error"]["code"] == "invalid_parameter"
