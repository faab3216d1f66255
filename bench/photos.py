"""Five public-domain or CC0 photos from scikit-image, with rough masks drawn as polygons by us.

What docs/evaluation.md was measured on.  The masks are coarse (a few dozen vertices each): good
enough to compare two models with, not a benchmark of absolute accuracy (use DUTS-TE or ECSSD for
that).  Licences, from scikit-image's own notes: astronaut (NASA, public domain), rocket (SpaceX,
public domain), chelsea, coffee and camera (CC0).

usage: python -m bench.photos OUT      writes OUT/Image/*.png and OUT/Mask/*.png
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

# name -> shapes, each ("poly", vertices) or ("ellipse", box), in the photo's pixel coordinates.
# fmt: off
SHAPES: dict[str, list[tuple[str, list[tuple[int, int]] | tuple[int, int, int, int]]]] = {
    "astronaut": [("poly", [
        (220, 14), (265, 18), (292, 45), (300, 90), (290, 140), (300, 170), (308, 220), (345, 265), (360, 300),
        (365, 345), (420, 345), (470, 365), (500, 420), (505, 512), (15, 512), (20, 420), (25, 330), (40, 275),
        (85, 250), (115, 225), (112, 180), (140, 150), (155, 130), (150, 90), (160, 40), (190, 20),
    ])],
    "chelsea": [("poly", [
        (0, 0), (345, 0), (395, 0), (400, 30), (370, 80), (355, 130), (345, 170), (330, 210), (320, 250),
        (330, 300), (0, 300),
    ])],
    "coffee": [
        ("ellipse", (78, 105, 480, 388)),
        ("ellipse", (172, 18, 402, 190)),
        ("poly", [(175, 100), (400, 100), (385, 230), (190, 230)]),
        ("poly", [(398, 200), (412, 68), (424, 70), (412, 205)]),
    ],
    "rocket": [("poly", [(312, 135), (322, 126), (332, 135), (337, 170), (337, 405), (305, 405), (305, 170)])],
    "camera": [("poly", [
        (185, 70), (225, 65), (262, 95), (268, 140), (322, 140), (328, 168), (330, 205), (318, 225), (300, 240),
        (296, 310), (330, 300), (335, 320), (300, 325), (345, 420), (400, 505), (385, 510), (300, 350), (292, 480),
        (288, 480), (282, 350), (245, 505), (230, 500), (275, 340), (270, 320), (245, 310), (200, 330), (150, 370),
        (140, 512), (0, 512), (0, 250), (30, 190), (80, 150), (130, 110), (160, 100),
    ])],
}
# fmt: on


def write(out: Path) -> None:
    from skimage import data  # pysodmetrics depends on scikit-image, which ships these photos

    (out / "Image").mkdir(parents=True, exist_ok=True)
    (out / "Mask").mkdir(parents=True, exist_ok=True)
    for name, shapes in SHAPES.items():
        photo = Image.fromarray(getattr(data, name)())
        photo.save(out / "Image" / f"{name}.png")
        mask = Image.new("L", photo.size, 0)
        draw = ImageDraw.Draw(mask)
        for kind, geometry in shapes:
            if kind == "poly":
                draw.polygon(geometry, fill=255)  # type: ignore[arg-type]
            else:
                draw.ellipse(geometry, fill=255)  # type: ignore[arg-type]
        mask.save(out / "Mask" / f"{name}.png")


if __name__ == "__main__":
    write(Path(sys.argv[1]))
