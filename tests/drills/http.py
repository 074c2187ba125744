"""A bounded HTTP client for the drills (loopback only); redirects are answers, not followed."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return None


_opener = urllib.request.build_opener(_NoRedirects)


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    seconds: float


def send(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Answer:
    import time

    started = time.monotonic()
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _opener.open(request, timeout=timeout) as response:
            return Answer(
                response.status,
                response.read().decode(errors="replace"),
                time.monotonic() - started,
            )
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read().decode(errors="replace"), time.monotonic() - started)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        return Answer(0, f"{type(error).__name__}: {error}", time.monotonic() - started)
