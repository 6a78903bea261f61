"""Rendering of the demo's synthetic scenes: one coloured shape on a plain stage doing one action.

Everything here is a pure function of its arguments (no randomness), so a video's frames are
fixed by the script that `videobert.demo.synthetic` draws from its seed.

Why the actions look the way they do: the demo must learn with *random* S3D weights, whose
1024-d feature is a mean over time and space. A slow drift across the frame barely changes
that mean, so every action is a fast, repeating motion that fills each 1.5 s clip with the same
local spatio-temporal pattern (rightward edges for ``push``, expanding edges for ``grow``,
flicker for ``flash`` ...). Each shape has its own colour, so objects differ in colour as well
as outline: random filters see colour far more reliably than shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

#: verb -> what the object does while the narrator says it (period of repeating motions: 1 s)
ACTIONS = {
    "push": "slides to the right (leaves on the right, comes back on the left)",
    "pull": "slides to the left",
    "lift": "rises (leaves at the top, comes back at the bottom)",
    "drop": "falls",
    "grow": "swells from small to large, again and again",
    "shrink": "contracts from large to small, again and again",
    "spin": "turns one full circle per second",
    "flash": "blinks on and off four times per second",
}
VERBS = tuple(ACTIONS)

#: object noun -> (RGB colour, colour word); every noun and verb is one WordPiece token
OBJECTS = {
    "square": ((220, 40, 40), "red"),
    "circle": ((40, 90, 230), "blue"),
    "triangle": ((40, 190, 60), "green"),
    "star": ((235, 215, 40), "yellow"),
    "cross": ((160, 50, 200), "purple"),
    "ring": ((245, 140, 20), "orange"),
}
SHAPES = tuple(OBJECTS)

PERIOD_S = 1.0          # one cycle of a repeating motion
TRAVEL_PER_S = 0.6      # stage widths per second for push / pull / lift / drop
BASE_RADIUS = 0.22      # object radius as a fraction of the stage side
SMALL_RADIUS, LARGE_RADIUS = 0.08, 0.36
FLASH_HZ = 4.0


@dataclass(frozen=True)
class Placement:
    """Where the object sits at rest: centre (x, y) in stage fractions, y downwards, and its angle."""

    x: float
    y: float
    angle: float


def _outline(shape: str, radius: float, angle: float) -> list[list[tuple[float, float]]]:
    """Polygons (unit stage coordinates around the origin) that make up ``shape``; the first is
    the fill, a second one (ring) is the hole."""

    def polygon(n: int, r: float, offset: float = 0.0) -> list[tuple[float, float]]:
        return [(r * math.cos(angle + offset + 2 * math.pi * i / n), r * math.sin(angle + offset + 2 * math.pi * i / n)) for i in range(n)]

    if shape == "square":
        return [polygon(4, radius * 1.2, math.pi / 4)]
    if shape == "circle":
        return [polygon(32, radius)]
    if shape == "triangle":
        return [polygon(3, radius * 1.25, -math.pi / 2)]
    if shape == "star":
        points = []
        for i in range(10):
            r = radius * (1.25 if i % 2 == 0 else 0.5)
            a = angle - math.pi / 2 + math.pi * i / 5
            points.append((r * math.cos(a), r * math.sin(a)))
        return [points]
    if shape == "cross":
        w, h = radius * 1.2, radius * 0.4
        arms = [(-w, -h), (-h, -h), (-h, -w), (h, -w), (h, -h), (w, -h), (w, h), (h, h), (h, w), (-h, w), (-h, h), (-w, h)]
        c, s = math.cos(angle), math.sin(angle)
        return [[(x * c - y * s, x * s + y * c) for x, y in arms]]
    if shape == "ring":
        return [polygon(32, radius * 1.1), polygon(32, radius * 0.6)]
    raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")


def object_state(verb: str, t: float, rest: Placement) -> tuple[float, float, float, float, bool]:
    """(x, y, radius, angle, visible) of an object ``t`` seconds into action ``verb``."""
    x, y, radius, angle, visible = rest.x, rest.y, BASE_RADIUS, rest.angle, True
    phase = (t / PERIOD_S) % 1.0
    if verb == "push":
        x = (rest.x + TRAVEL_PER_S * t) % 1.0
    elif verb == "pull":
        x = (rest.x - TRAVEL_PER_S * t) % 1.0
    elif verb == "lift":
        y = (rest.y - TRAVEL_PER_S * t) % 1.0
    elif verb == "drop":
        y = (rest.y + TRAVEL_PER_S * t) % 1.0
    elif verb == "grow":
        radius = SMALL_RADIUS + (LARGE_RADIUS - SMALL_RADIUS) * phase
    elif verb == "shrink":
        radius = LARGE_RADIUS - (LARGE_RADIUS - SMALL_RADIUS) * phase
    elif verb == "spin":
        angle = rest.angle + 2 * math.pi * t / PERIOD_S
    elif verb == "flash":
        visible = int(t * FLASH_HZ * 2) % 2 == 0
    elif verb != "rest":
        raise ValueError(f"unknown action {verb!r}; known: {VERBS + ('rest',)}")
    return x, y, radius, angle, visible


def render_frame(
    width: int,
    height: int,
    background: tuple[int, int, int],
    shape: str | None = None,
    verb: str = "rest",
    t: float = 0.0,
    rest: Placement = Placement(0.5, 0.5, 0.0),
) -> np.ndarray:
    """One RGB frame ``uint8 [height, width, 3]``: the object on a square stage of side
    ``min(width, height)`` centred in the frame (so a centre crop never cuts it), ``t`` seconds
    into its action. ``shape=None`` draws the empty stage. Objects that leave one edge of the
    stage come back at the opposite edge, so the motion never stops."""
    frame = Image.new("RGB", (width, height), background)
    if shape is None:
        return np.asarray(frame)
    side = min(width, height)
    x, y, radius, angle, visible = object_state(verb, t, rest)
    if not visible:
        return np.asarray(frame)
    stage = Image.new("RGB", (side, side), background)  # drawing here clips wrap-around copies
    colour = OBJECTS[shape][0]
    marker = tuple(int(c * 0.35) for c in colour)  # a dark spoke makes circles and rings visibly turn
    draw = ImageDraw.Draw(stage)
    polygons = _outline(shape, radius, angle)
    reach = radius * 1.3
    for dx in (-1.0, 0.0, 1.0):  # copies across the stage's edges
        for dy in (-1.0, 0.0, 1.0):
            cx, cy = x + dx, y + dy
            if not (-reach < cx < 1 + reach and -reach < cy < 1 + reach):
                continue

            def to_pixels(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
                return [((cx + px) * side, (cy + py) * side) for px, py in points]

            draw.polygon(to_pixels(polygons[0]), fill=colour)
            for hole in polygons[1:]:
                draw.polygon(to_pixels(hole), fill=background)
            spoke = [(0.0, 0.0), (radius * 0.9 * math.cos(angle), radius * 0.9 * math.sin(angle))]
            draw.line(to_pixels(spoke), fill=marker, width=max(1, side // 24))
    frame.paste(stage, ((width - side) // 2, (height - side) // 2))
    return np.asarray(frame)


def object_box(width: int, height: int, shape: str, verb: str, t: float, rest: Placement) -> tuple[float, float, float, float] | None:
    """The pixel box ``(x1, y1, x2, y2)`` of the object in the frame :func:`render_frame` draws with
    the same arguments, or ``None`` when it is not visible. An object crossing the stage's edge is
    drawn twice (it wraps around): the box is that of its larger visible part."""
    x, y, radius, angle, visible = object_state(verb, t, rest)
    if not visible:
        return None
    side = min(width, height)
    points = [p for polygon in _outline(shape, radius, angle)[:1] for p in polygon]
    best, best_area = None, 0.0
    for dx in (-1.0, 0.0, 1.0):
        for dy in (-1.0, 0.0, 1.0):
            x1 = max(0.0, min(x + dx + px for px, _ in points))
            y1 = max(0.0, min(y + dy + py for _, py in points))
            x2 = min(1.0, max(x + dx + px for px, _ in points))
            y2 = min(1.0, max(y + dy + py for _, py in points))
            if x2 > x1 and y2 > y1 and (x2 - x1) * (y2 - y1) > best_area:
                best, best_area = (x1, y1, x2, y2), (x2 - x1) * (y2 - y1)
    if best is None:
        return None
    left, top = (width - side) // 2, (height - side) // 2
    return (left + best[0] * side, top + best[1] * side, left + best[2] * side, top + best[3] * side)
