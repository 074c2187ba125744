"""Web origins (``scheme://host[:port]``), in one place: the owner's allowed embedding origins,
the origin of a page a couple returns to, and the origins a checkout's forms may lead to."""

from __future__ import annotations

from urllib.parse import urlsplit

from .errors import DomainError

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1"})


def origin_of(url: str | None) -> str | None:
    """The origin of an http(s) URL as it is written, or None for anything else."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def parse_origin(line: str, *, allow_local: bool, field: str = "origins") -> str:
    """One exact origin, ``https://host[:port]``, normalised; explains what is wrong otherwise.
    Plain http is accepted for local hosts only, and those only when ``allow_local``."""
    text = line.strip()
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = -1
    local = parts.hostname in LOCAL_HOSTS
    if parts.scheme == "http" and local and not allow_local:
        raise DomainError(
            f"“{text}”: local addresses are allowed only in development.", field=field
        )
    if (
        parts.scheme not in ("https", "http")
        or (parts.scheme == "http" and not local)
        or not parts.hostname
        or port == -1
        or parts.username
        or parts.password
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "*" in text
    ):
        raise DomainError(
            f"“{text}” is not an origin. Write only the scheme and host, such as "
            "https://www.example.com or https://example.com:8443, without a path.",
            field=field,
        )
    origin = f"{parts.scheme}://{parts.hostname.lower()}"
    return f"{origin}:{port}" if port is not None else origin
