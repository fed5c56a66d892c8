"""Room: obs (stands alone). Thin Django adapter: URL patterns that answer with the endpoints.

``urlpatterns += obs_urlpatterns(obs.endpoints)`` serves ``/obs/logs`` and the rest; bodies stream
through ``StreamingHttpResponse``. Django is imported only when this function is called.
"""

from __future__ import annotations

import re
from typing import Any

from .endpoints import ObsEndpoints, Request


def obs_urlpatterns(endpoints: ObsEndpoints, prefix: str = "obs/") -> list[Any]:
    from django.http import StreamingHttpResponse  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from django.urls import re_path  # type: ignore[import-untyped,import-not-found,unused-ignore]

    def view(request: Any, path: str = "") -> Any:
        answer = endpoints.handle(
            Request(
                method=request.method,
                path="/" + path,
                query=request.META.get("QUERY_STRING", ""),
                headers={k.lower(): v for k, v in request.headers.items()},
            )
        )
        response = StreamingHttpResponse(answer.body, status=answer.status)
        for name, value in answer.headers:
            response[name] = value
        return response

    return [re_path(rf"^{re.escape(prefix)}(?P<path>.*)$", view, name="obs")]
