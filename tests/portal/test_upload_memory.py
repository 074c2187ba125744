"""One upload costs a worker at most 64 MB more, whatever canvas a small file declares.

Pillow decodes outside Python's allocator, so the only honest measure is the process's peak
resident size: each case runs in a fresh interpreter that records its peak before and after
storing the image.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

BUDGET_BYTES = 64 * 1024 * 1024

_MAKE = """
import sys
from PIL import Image
kind, width, height, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if kind == "png":
    Image.new("RGBA", (width, height), (200, 120, 40, 255)).save(path, format="PNG")
elif kind == "rgb.png":
    Image.new("RGB", (width, height), (200, 120, 40)).save(path, format="PNG")
else:
    Image.new("RGB", (width, height), (200, 120, 40)).save(path, format="JPEG", quality=80)
"""

_STORE = """
import json, resource, sys
from flask import Flask
from mais import media
from mais.errors import DomainError
app = Flask("upload-memory")
app.config.update(MAIS_UPLOAD_DIR=sys.argv[2], MAIS_MAX_UPLOAD_BYTES=5 * 1024 * 1024)
data = open(sys.argv[1], "rb").read()
with app.app_context():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        stored = media.store_image(1, data)
        outcome = {"stored": stored.key}
    except DomainError as error:
        outcome = {"refused": str(error)}
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({**outcome, "grew": (after - before) * 1024}))
"""


def _image(tmp_path: Path, kind: str, width: int, height: int) -> Path:
    path = tmp_path / f"upload.{kind}"
    subprocess.run(
        [sys.executable, "-c", _MAKE, kind, str(width), str(height), str(path)],
        check=True,
        timeout=120,
    )
    return path


def _store_in_fresh_process(tmp_path: Path, image: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _STORE, str(image), str(tmp_path / "uploads")],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_small_file_declaring_a_huge_canvas_is_refused_without_decoding(tmp_path):
    image = _image(tmp_path, "png", 6000, 6600)  # ~40 megapixels in a file of a few hundred kB
    assert image.stat().st_size < 1024 * 1024
    outcome = _store_in_fresh_process(tmp_path, image)
    assert "at most 2.6 megapixels" in outcome["refused"]
    assert outcome["grew"] < BUDGET_BYTES


@pytest.mark.parametrize(
    ("kind", "width", "height"),
    [
        ("png", 1610, 1610),  # transparent, just under its cap (eight bytes a pixel to resize)
        ("rgb.png", 2280, 2280),  # opaque, just under its cap (four bytes a pixel)
        ("jpg", 8000, 6000),  # a 48-megapixel camera photo, decoded at a quarter of its size
        ("jpg", 2500, 2500),  # too large to decode whole, decoded at half its size
    ],
)
def test_the_largest_accepted_images_stay_within_the_budget(tmp_path, kind, width, height):
    outcome = _store_in_fresh_process(tmp_path, _image(tmp_path, kind, width, height))
    assert "stored" in outcome, outcome
    assert outcome["grew"] < BUDGET_BYTES, f"grew {outcome['grew'] / 1_048_576:.0f} MiB"
