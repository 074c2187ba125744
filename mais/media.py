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
# What decoding and resizing one upload may hold at once, so that a worker grows by at most
# 64 MB with the resized copy: a small file can declare a huge canvas, and its size on disk says
# nothing about its size decoded.
MAX_DECODE_BYTES = 20 * 1024 * 1024


def _decode_bytes_per_pixel(mode: str) -> int:
    """Pillow keeps a pixel in 1 byte for greyscale and palette images, else in 4; resizing an
    image with an alpha channel makes a premultiplied copy of it first."""
    if mode in ("1", "L", "P"):
        return 1
    return 8 if mode in ("LA", "RGBA", "La", "PA") else 4


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


def _decode_jpeg_reduced(image: Image.Image) -> None:
    """A JPEG can be decoded at 1/2, 1/4 or 1/8 of its size: take the smallest scale that still
    covers what is kept (MAX_SIDE), or, if that would not fit the decoding budget, the first that
    does, so a camera photo never exists in memory at full size."""
    width, height = image.size
    kept = min(1.0, MAX_SIDE / max(width, height))
    per_pixel = _decode_bytes_per_pixel(image.mode)
    chosen = 1
    for divisor in (2, 4, 8):
        covers = width // divisor >= width * kept and height // divisor >= height * kept
        too_big = -(-width // chosen) * -(-height // chosen) * per_pixel > MAX_DECODE_BYTES
        if covers or too_big:
            chosen = divisor
    image.draft(image.mode, (-(-width // chosen), -(-height // chosen)))


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
            if image.format == "JPEG":
                _decode_jpeg_reduced(image)
            per_pixel = _decode_bytes_per_pixel(image.mode)
            if image.width * image.height * per_pixel > MAX_DECODE_BYTES:
                megapixels = MAX_DECODE_BYTES // per_pixel / 1_000_000
                raise DomainError(
                    f"That image is {image.width:,} × {image.height:,} pixels; an image like it "
                    f"may have at most {megapixels:.1f} megapixels. Resize it first.",
                    field=field,
                )
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombWarning):
        raise not_an_image from None
    except Image.DecompressionBombError:
        raise DomainError("That image has too many pixels; resize it first.", field=field) from None
    return image


def _encode(image: Image.Image, image_format: str) -> bytes:
    if image_format == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    out = io.BytesIO()
    # Re-encoding drops EXIF (camera, GPS position) and anything hidden after the image data.
    if image_format == "PNG":
        image.save(out, format="PNG", optimize=True)
    else:
        image.save(out, format=image_format, quality=85)
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
    # Shrunk in place, the large one first and the thumbnail from it, so that no second copy of
    # the decoded original is ever made.
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    large = _encode(image, image_format)
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    store = get_store()
    store.put(stored.key, large, content_type)
    store.put(stored.thumbnail_key, _encode(image, image_format), content_type)
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
