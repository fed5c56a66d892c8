"""Room: obs (stands alone). ASGI middleware counting HTTP requests and timing them.

``http_requests_total{method, route, status}`` and ``http_request_duration_seconds{method,
route}``. ``route`` is the route *template* (``/nodes/{node_id}``), never the raw path: it is read
from Starlette/FastAPI's matched route (``scope["route"].path``) after the app answered, or from
``route_of(scope)`` when given; a request answered by a mounted app (its ``root_path`` grew) is
``"<mount>/{path}"``; a request that matched no route is ``"<unmatched>"``. At most
``max_routes`` distinct routes are kept (then ``"<other>"``) and unknown methods are ``"OTHER"``,
so the label sets stay bounded whatever clients send.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from .asgi import Message, Receive, Scope, Send
from .metrics import MetricRegistry

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"
OTHER_ROUTE = "<other>"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def starlette_route(scope: Scope) -> str | None:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


class RequestMetricsMiddleware:
    def __init__(
        self,
        app: AsgiApp,
        registry: MetricRegistry,
        *,
        route_of: Callable[[Scope], str | None] = starlette_route,
        max_routes: int = 200,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self.route_of = route_of
        self.max_routes = max_routes
        self.timer = timer
        self._routes: set[str] = set()
        self.requests = registry.counter(
            "http_requests_total", "HTTP requests answered", labels=("method", "route", "status")
        )
        self.duration = registry.histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            labels=("method", "route"),
            buckets=LATENCY_BUCKETS,
        )

    def _route(self, scope: Scope, root_path: str) -> str:
        route = self.route_of(scope)
        if route is None:
            mounted = str(scope.get("root_path", ""))
            if mounted != root_path and mounted.startswith(root_path):
                route = mounted[len(root_path) :] + "/{path}"
        if route is None:
            return UNMATCHED
        if route not in self._routes:
            if len(self._routes) >= self.max_routes:
                return OTHER_ROUTE
            self._routes.add(route)
        return route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = self.timer()
        status = 500
        root_path = str(scope.get("root_path", ""))

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = self.timer() - start
            method = scope.get("method", "GET")
            method = method if method in METHODS else "OTHER"
            route = self._route(scope, root_path)
            self.requests.labels(method=method, route=route, status=status).inc()
            self.duration.labels(method=method, route=route).observe(max(elapsed, 0.0))
