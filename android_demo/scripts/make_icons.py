"""Draw the app icons (www/icons/*.png) with Pillow; run once, the PNGs are committed.

    .venv/bin/python android_demo/scripts/make_icons.py
"""

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "www" / "icons"


def icon(size: int, maskable: bool) -> Image.Image:
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    if maskable:  # full bleed: the launcher applies its own mask; keep the mark in the safe zone
        d.rectangle([0, 0, size, size], fill=(15, 95, 89, 255))
    else:
        d.rounded_rectangle([0, 0, size - 1, size - 1], radius=size // 5, fill=(15, 95, 89, 255))
    s = size * (0.36 if maskable else 0.46)  # half width of the mark
    c = size / 2
    # A chip: a rounded square with pins, and three bars (a little bar chart of scores) inside.
    d.rounded_rectangle([c - s * 0.72, c - s * 0.72, c + s * 0.72, c + s * 0.72], radius=s * 0.16,
                        outline=(255, 255, 255, 255), width=max(2, int(size * 0.035)))
    pin = max(2, int(size * 0.03))
    for k in (-0.4, 0, 0.4):
        for x0, y0, x1, y1 in (
            (c + k * s - pin, c - s, c + k * s + pin, c - s * 0.78),
            (c + k * s - pin, c + s * 0.78, c + k * s + pin, c + s),
            (c - s, c + k * s - pin, c - s * 0.78, c + k * s + pin),
            (c + s * 0.78, c + k * s - pin, c + s, c + k * s + pin),
        ):
            d.rectangle([x0, y0, x1, y1], fill=(255, 255, 255, 255))
    bar = s * 0.22
    for i, h in enumerate((0.55, 0.9, 0.35)):
        x = c - s * 0.42 + i * s * 0.3
        d.rectangle([x, c + s * 0.42 - h * s * 0.84, x + bar, c + s * 0.42], fill=(127, 224, 211, 255))
    return img


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for size in (192, 512):
        icon(size, False).save(OUT / f"icon-{size}.png", optimize=True)
    icon(512, True).save(OUT / "maskable-512.png", optimize=True)
    print(f"wrote icons to {OUT}")


if __name__ == "__main__":
    main()
