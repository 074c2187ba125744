"""Uploaded images: checked by content, re-encoded without metadata, thumbnailed, and kept in a
store that an object store (S3 and the like) could replace behind the same small interface."""

from __future__ import annotations

import io
import re
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from flask import current_app, url_for
from PIL import Image, UnidentifiedImageError

from .errors import DomainError

DEFAULT_MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_SIDE = 2000
THUMBNAIL_SIDE = 480
MAX_PIXELS = 40_000_000

# Pillow format → (content type, file extension)
FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
CONTENT_TYPES = {ext: content_type for content_type, ext in FORMATS.values()}
KEY_PATTERN = re.compile(r"^t[0-9]+/[0-9a-f]{32}(-thumb)?\.(jpg|png|webp)$")


class MediaStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def delete(self, key: str) -> None: ...


class LocalMediaStore:
    """Files under one directory (``MAIS_UPLOAD_DIR``, by default ``instance/uploads``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not KEY_PATTERN.match(key):
            raise ValueError("not a media key")
        return self.root / key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (ValueError, FileNotFoundError):
            return None

    def delete(self, key: str) -> None:
        if KEY_PATTERN.match(key):
            self._path(key).unlink(missing_ok=True)


def get_store() -> MediaStore:
    return LocalMediaStore(current_app.config["MAIS_UPLOAD_DIR"])


@dataclass(frozen=True)
class StoredImage:
    key: str
    thumbnail_key: str
    content_type: str


def max_upload_bytes() -> int:
    return int(current_app.config.get("MAIS_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES))


def _open_image(data: bytes, field: str) -> Image.Image:
    limit = max_upload_bytes()
    if len(data) > limit:
        raise DomainError(
            f"That file is {len(data) / 1_048_576:.1f} MB; images may be at most "
            f"{limit / 1_048_576:.0f} MB.",
            field=field,
        )
    if not data:
        raise DomainError("Choose an image file to upload.", field=field)
    not_an_image = DomainError("That file is not a JPEG, PNG or WebP image.", field=field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in FORMATS:
                raise not_an_image
            if image.width * image.height > MAX_PIXELS:
                raise DomainError("That image has too many pixels; resize it first.", field=field)
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombWarning):
        raise not_an_image from None
    except Image.DecompressionBombError:
        raise DomainError("That image has too many pixels; resize it first.", field=field) from None
    return image


def _encode(image: Image.Image, image_format: str, side: int) -> bytes:
    copy = image.copy()
    copy.thumbnail((side, side))
    if image_format == "JPEG" and copy.mode not in ("RGB", "L"):
        copy = copy.convert("RGB")
    out = io.BytesIO()
    # Re-encoding drops EXIF (camera, GPS position) and anything hidden after the image data.
    if image_format == "PNG":
        copy.save(out, format="PNG", optimize=True)
    else:
        copy.save(out, format=image_format, quality=85)
    return out.getvalue()


def store_image(tenant_id: int, data: bytes, *, field: str = "photo") -> StoredImage:
    """Check ``data`` is an image by its content, then store it and a thumbnail."""
    image = _open_image(data, field)
    image_format = image.format or ""
    content_type, ext = FORMATS[image_format]
    name = uuid.uuid4().hex
    stored = StoredImage(
        f"t{tenant_id}/{name}.{ext}", f"t{tenant_id}/{name}-thumb.{ext}", content_type
    )
    store = get_store()
    store.put(stored.key, _encode(image, image_format, MAX_SIDE), content_type)
    store.put(stored.thumbnail_key, _encode(image, image_format, THUMBNAIL_SIDE), content_type)
    return stored


def delete_media(*keys: str | None) -> None:
    store = get_store()
    for key in keys:
        if key:
            store.delete(key)


def read_media(key: str) -> tuple[bytes, str] | None:
    """The bytes and content type of a stored image, or None."""
    if not KEY_PATTERN.match(key):
        return None
    data = get_store().get(key)
    if data is None:
        return None
    return data, CONTENT_TYPES[key.rsplit(".", 1)[1]]


def media_url(key: str) -> str:
    """The public URL of a stored image (package photos, logos)."""
    return url_for("portal.media_file", key=key)
