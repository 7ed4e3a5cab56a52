"""Start and end pictures for the example workflows, drawn here rather than shipped as binaries."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

START_NAME = "kling_example_start.png"
END_NAME = "kling_example_end.png"
SIZE = (640, 384)


def _scene(sky_top: tuple[int, int, int], sky_bottom: tuple[int, int, int], sun: tuple[int, int]) -> Image.Image:
    width, height = SIZE
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    sky = (np.array(sky_top) * (1 - t) + np.array(sky_bottom) * t).repeat(width, 1).astype(np.uint8)
    img = Image.fromarray(sky)
    draw = ImageDraw.Draw(img)
    sx, sy = sun
    draw.ellipse((sx - 40, sy - 40, sx + 40, sy + 40), fill=(255, 230, 160))
    for i, shade in enumerate((60, 40, 25)):
        base = height - 140 + i * 45
        points = [(x, base + int(25 * np.sin(x / (70 + 25 * i) + i))) for x in range(0, width + 20, 20)]
        draw.polygon(points + [(width, height), (0, height)], fill=(shade, shade + 30 - i * 5, shade + 10))
    return img


def write_sample_images(folder: str | Path) -> tuple[Path, Path]:
    """Writes a dawn scene (start) and a dusk scene (end); returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    start = folder / START_NAME
    end = folder / END_NAME
    _scene((40, 80, 160), (250, 170, 120), (160, 250)).save(start)
    _scene((30, 10, 60), (200, 60, 90), (500, 120)).save(end)
    return start, end
