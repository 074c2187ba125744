"""The OpenAPI 3 description of ``/v1``; ``tests/platform/test_api_schema.py`` checks that the
responses match it."""

from __future__ import annotations

from typing import Any


def _json(schema_name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json("Error")}


# The input guard (mais/input_guard.py) answers this on every path, before the API sees it.
_UNREADABLE = (
    "The address, the query string or a header (X-Tenant-Key, Origin, If-None-Match…) holds a "
    "control character (NUL, CR, LF…) or text that is not UTF-8."
)


def _read_responses(ok_schema: str, ok_description: str) -> dict[str, Any]:
    return {
        "200": {
            "description": ok_description,
            "headers": {
                "ETag": {"schema": {"type": "string"}},
                "Cache-Control": {"schema": {"type": "string"}},
            },
            "content": _json(ok_schema),
        },
        "304": {"description": "Not modified since the ETag sent in If-None-Match."},
        "400": _error(_UNREADABLE),
        "401": _error("The X-Tenant-Key header is missing or not a valid public key."),
        "404": _error("The tenant is not taking bookings, or the resource does not exist."),
        "429": _error("Too many requests with this key; retry after the Retry-After seconds."),
    }


_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "An ETag from an earlier answer; an unchanged resource answers 304.",
    "schema": {"type": "string"},
}


def openapi_document(base_url: str) -> dict[str, Any]:
    availability_responses = _read_responses("Availability", "The status of every day asked.")
    availability_responses["400"] = _error(
        "from or to is missing or not a date, from is after to, the range exceeds 366 days, "
        "or a date lies outside 2000-01-01 to 2100-12-31. " + _UNREADABLE
    )
    package_responses = _read_responses("Package", "The package.")
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "MAIS public API",
            "version": "1.0.0",
            "description": (
                "A tenant's packages and open dates, for its own website. Authenticate with the "
                "tenant's public key (pk_live_…) in the X-Tenant-Key header. Browsers may call "
                "it from the tenant's allowed origins (CORS)."
            ),
        },
        "servers": [{"url": f"{base_url}/v1"}],
        "security": [{"TenantKey": []}],
        "paths": {
            "/packages": {
                "get": {
                    "operationId": "listPackages",
                    "summary": "Active packages, in the tenant's order.",
                    "parameters": [_IF_NONE_MATCH],
                    "responses": _read_responses("PackageList", "The active packages."),
                }
            },
            "/packages/{slug}": {
                "get": {
                    "operationId": "getPackage",
                    "summary": "One active package.",
                    "parameters": [
                        {
                            "name": "slug",
                            "in": "path",
                            "required": True,
                            "description": "Lower-case letters and digits, words joined by -.",
                            "schema": {
                                "type": "string",
                                "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$",
                                "maxLength": 80,
                            },
                        },
                        _IF_NONE_MATCH,
                    ],
                    "responses": package_responses,
                }
            },
            "/availability": {
                "get": {
                    "operationId": "getAvailability",
                    "summary": "Whether each day from `from` to `to` (inclusive) can be booked.",
                    "parameters": [
                        {
                            "name": name,
                            "in": "query",
                            "required": True,
                            "description": "YYYY-MM-DD, from 2000-01-01 to 2100-12-31.",
                            "schema": {"type": "string", "format": "date"},
                        }
                        for name in ("from", "to")
                    ]
                    + [_IF_NONE_MATCH],
                    "responses": availability_responses,
                }
            },
        },
        "components": {
            "securitySchemes": {
                "TenantKey": {"type": "apiKey", "in": "header", "name": "X-Tenant-Key"}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {"type": "string"},
                        "field": {"type": "string", "description": "The parameter at fault."},
                    },
                    "additionalProperties": False,
                },
                "Photo": {
                    "type": "object",
                    "required": ["url", "thumbnail_url", "alt_text"],
                    "properties": {
                        "url": {"type": "string", "format": "uri"},
                        "thumbnail_url": {"type": "string", "format": "uri"},
                        "alt_text": {"type": "string"},
                    },
                    "additionalProperties": False,
                },
                "AddOn": {
                    "type": "object",
                    "required": ["id", "title", "price_cents"],
                    "properties": {
                        "id": {"type": "integer"},
                        "title": {"type": "string"},
                        "price_cents": {"type": "integer", "minimum": 0},
                    },
                    "additionalProperties": False,
                },
                "Package": {
                    "type": "object",
                    "required": [
                        "slug",
                        "title",
                        "description_html",
                        "price_cents",
                        "currency",
                        "segment",
                        "photos",
                        "addons",
                    ],
                    "properties": {
                        "slug": {"type": "string"},
                        "title": {"type": "string"},
                        "description_html": {
                            "type": "string",
                            "description": "Sanitized HTML (a small allow-list of tags).",
                        },
                        "price_cents": {"type": "integer", "minimum": 0},
                        "currency": {"type": "string", "pattern": "^[a-z]{3}$"},
                        "segment": {
                            "type": "string",
                            "nullable": True,
                            "description": "The catalog section's title, if any.",
                        },
                        "photos": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Photo"},
                        },
                        "addons": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/AddOn"},
                        },
                    },
                    "additionalProperties": False,
                },
                "PackageList": {
                    "type": "object",
                    "required": ["packages"],
                    "properties": {
                        "packages": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Package"},
                        }
                    },
                    "additionalProperties": False,
                },
                "Day": {
                    "type": "object",
                    "required": ["date", "is_open", "reason"],
                    "properties": {
                        "date": {"type": "string", "format": "date"},
                        "is_open": {"type": "boolean"},
                        "reason": {
                            "type": "string",
                            "nullable": True,
                            "enum": ["past", "booked", "unavailable", "beyond horizon", None],
                            "description": "Why the day is closed; null when open.",
                        },
                    },
                    "additionalProperties": False,
                },
                "Availability": {
                    "type": "object",
                    "required": ["from", "to", "days"],
                    "properties": {
                        "from": {"type": "string", "format": "date"},
                        "to": {"type": "string", "format": "date"},
                        "days": {"type": "array", "items": {"$ref": "#/components/schemas/Day"}},
                    },
                    "additionalProperties": False,
                },
            },
        },
    }
