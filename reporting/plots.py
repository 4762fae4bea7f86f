"""A tiny PNG line-plot renderer (NumPy + zlib only; matplotlib is not a dependency).

``line_plot`` draws time against MLX release for one op family: a log-scale
y axis (ms), the releases as categories on the x axis, one line per
(case, backend), coloured by backend and marked by case, with a legend.
Text is drawn with a built-in 3x5 pixel font (upper case, digits, a few signs).
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np

# --------------------------------------------------------------------------
# PNG encoding
# --------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def encode_png(image):
    """An (H, W, 3) uint8 array as PNG bytes (8-bit RGB, no filtering)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    height, width, channels = image.shape
    if channels != 3:
        raise ValueError("encode_png takes an RGB image (H, W, 3)")
    raw = np.zeros((height, width * 3 + 1), dtype=np.uint8)  # filter byte 0 per row
    raw[:, 1:] = image.reshape(height, width * 3)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (PNG_SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw.tobytes(), 9)) + _chunk(b"IEND", b""))


def png_size(data):
    """(width, height) of PNG bytes, or ValueError if they are not a PNG."""
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    return struct.unpack(">II", data[16:24])


# --------------------------------------------------------------------------
# A 3x5 pixel font
# --------------------------------------------------------------------------

_FONT_ROWS = {
    "0": "### #.# #.# #.# ###", "1": ".#. ##. .#. .#. ###", "2": "### ..# ### #.. ###",
    "3": "### ..# ### ..# ###", "4": "#.# #.# ### ..# ..#", "5": "### #.. ### ..# ###",
    "6": "### #.. ### #.# ###", "7": "### ..# ..# ..# ..#", "8": "### #.# ### #.# ###",
    "9": "### #.# ### ..# ###", "A": ".#. #.# ### #.# #.#", "B": "##. #.# ##. #.# ##.",
    "C": ".## #.. #.. #.. .##", "D": "##. #.# #.# #.# ##.", "E": "### #.. ##. #.. ###",
    "F": "### #.. ##. #.. #..", "G": ".## #.. #.# #.# .##", "H": "#.# #.# ### #.# #.#",
    "I": "### .#. .#. .#. ###", "J": "..# ..# ..# #.# .#.", "K": "#.# #.# ##. #.# #.#",
    "L": "#.. #.. #.. #.. ###", "M": "#.# ### ### #.# #.#", "N": "##. #.# #.# #.# #.#",
    "O": ".#. #.# #.# #.# .#.", "P": "##. #.# ##. #.. #..", "Q": ".#. #.# #.# ### .##",
    "R": "##. #.# ##. #.# #.#", "S": ".## #.. .#. ..# ##.", "T": "### .#. .#. .#. .#.",
    "U": "#.# #.# #.# #.# ###", "V": "#.# #.# #.# #.# .#.", "W": "#.# #.# ### ### #.#",
    "X": "#.# #.# .#. #.# #.#", "Y": "#.# #.# .#. .#. .#.", "Z": "### ..# .#. #.. ###",
    ".": "... ... ... ... .#.", "-": "... ... ### ... ...", "_": "... ... ... ... ###",
    "=": "... ### ... ### ...", "/": "..# ..# .#. #.. #..", "(": ".#. #.. #.. #.. .#.",
    ")": ".#. ..# ..# ..# .#.", ",": "... ... ... .#. #..", ":": "... .#. ... .#. ...",
    "+": "... .#. ### .#. ...", "%": "#.. ..# .#. #.. ..#", " ": "... ... ... ... ...",
    "'": ".#. .#. ... ... ...", "?": "### ..# .## ... .#.",
}
FONT = {
    ch: np.array([[c == "#" for c in row] for row in rows.split()], dtype=bool)
    for ch, rows in _FONT_ROWS.items()
}


class Canvas:
    """An RGB image with the few drawing primitives a line plot needs."""

    def __init__(self, width, height, background=(255, 255, 255)):
        self.width, self.height = width, height
        self.pixels = np.empty((height, width, 3), dtype=np.uint8)
        self.pixels[:] = background

    def rect(self, x0, y0, x1, y1, color):
        x0, x1 = sorted((int(round(x0)), int(round(x1))))
        y0, y1 = sorted((int(round(y0)), int(round(y1))))
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, self.width - 1), min(y1, self.height - 1)
        if x0 <= x1 and y0 <= y1:
            self.pixels[y0:y1 + 1, x0:x1 + 1] = color

    def line(self, x0, y0, x1, y1, color, width=1, dash=0):
        steps = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        xs = np.linspace(x0, x1, steps)
        ys = np.linspace(y0, y1, steps)
        if dash:
            keep = (np.arange(steps) // dash) % 2 == 0
            xs, ys = xs[keep], ys[keep]
        half = width // 2
        for dx in range(-half, width - half):
            for dy in range(-half, width - half):
                xi = np.round(xs).astype(int) + dx
                yi = np.round(ys).astype(int) + dy
                ok = (xi >= 0) & (xi < self.width) & (yi >= 0) & (yi < self.height)
                self.pixels[yi[ok], xi[ok]] = color

    def marker(self, x, y, shape, color, size=4):
        x, y = int(round(x)), int(round(y))
        if shape == "square":
            self.rect(x - size + 1, y - size + 1, x + size - 1, y + size - 1, color)
            return
        for dy in range(-size, size + 1):
            for dx in range(-size, size + 1):
                inside = {
                    "circle": dx * dx + dy * dy <= size * size,
                    "diamond": abs(dx) + abs(dy) <= size,
                    "triangle": dy >= -size and abs(dx) * 2 <= (dy + size),
                    "cross": abs(abs(dx) - abs(dy)) <= 1,
                    "plus": abs(dx) <= 1 or abs(dy) <= 1,
                }.get(shape, dx * dx + dy * dy <= size * size)
                if inside and 0 <= x + dx < self.width and 0 <= y + dy < self.height:
                    self.pixels[y + dy, x + dx] = color

    def text(self, x, y, string, color=(0, 0, 0), scale=2):
        """Draw ``string`` (upper-cased) with its top-left corner at (x, y)."""
        x0 = int(x)
        for ch in str(string).upper():
            glyph = FONT.get(ch, FONT["?"])
            ys, xs = np.nonzero(glyph)
            for gy, gx in zip(ys, xs):
                self.rect(x0 + gx * scale, y + gy * scale,
                          x0 + gx * scale + scale - 1, y + gy * scale + scale - 1, color)
            x0 += 4 * scale
        return x0

    @staticmethod
    def text_width(string, scale=2):
        return len(str(string)) * 4 * scale


# Colour per backend (a colour-blind-safe palette), marker per case.
BACKEND_COLORS = {
    "mlx_cpu": (0, 114, 178), "mlx_gpu": (213, 94, 0), "mlx_gpu_compile": (204, 121, 167),
    "torch_cpu": (0, 158, 115), "torch_cuda": (230, 159, 0), "torch_mps": (86, 180, 233),
}
EXTRA_COLORS = [(120, 120, 120), (0, 0, 0), (150, 40, 40), (40, 40, 150)]
MARKERS = ["circle", "square", "triangle", "diamond", "cross", "plus"]


def backend_color(name, order=()):
    if name in BACKEND_COLORS:
        return BACKEND_COLORS[name]
    index = list(order).index(name) if name in order else 0
    return EXTRA_COLORS[index % len(EXTRA_COLORS)]


def _log_ticks(lo, hi):
    """Tick values (ms) for a log axis from lo to hi."""
    ticks = []
    for exp in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 2):
        for m in (1, 2, 5):
            v = m * 10.0 ** exp
            if lo <= v <= hi:
                ticks.append(v)
    if len(ticks) > 8:
        ticks = [t for t in ticks if round(t / 10 ** math.floor(math.log10(t)), 6) == 1]
    return ticks


def _fmt_ms(v):
    if v >= 1:
        return f"{v:g}"
    return f"{v:.3g}"


def line_plot(title, releases, series, width=1000, height=560):
    """Render a time-vs-release plot; return PNG bytes.

    ``releases``: the x categories (tags), in order. ``series``: a list of
    dicts with ``backend``, ``case`` and ``values`` (ms per release, None
    where missing); a line joins consecutive releases that have values.
    """
    cases = list(dict.fromkeys(s["case"] for s in series))
    backends = list(dict.fromkeys(s["backend"] for s in series))
    legend_rows = len(cases) + 1
    legend_h = 18 * legend_rows + 16
    canvas = Canvas(width, height + legend_h)
    left, right, top, bottom = 90, 30, 40, height - 60
    canvas.text(left, 12, title, scale=3)

    values = [v for s in series for v in s["values"] if v is not None and v > 0]
    if not values:
        canvas.text(left, top + 40, "NO DATA", scale=3)
        return encode_png(canvas.pixels)
    lo, hi = min(values), max(values)
    lo_l, hi_l = math.log10(lo), math.log10(hi)
    if hi_l - lo_l < 0.3:
        mid = (hi_l + lo_l) / 2
        lo_l, hi_l = mid - 0.15, mid + 0.15
    pad = (hi_l - lo_l) * 0.06
    lo_l, hi_l = lo_l - pad, hi_l + pad

    def ypix(v):
        return bottom - (math.log10(v) - lo_l) / (hi_l - lo_l) * (bottom - top)

    n = len(releases)
    span = right_edge = width - right

    def xpix(i):
        if n == 1:
            return (left + right_edge) / 2
        return left + 20 + i * (span - left - 40) / (n - 1)

    # axes, grid and ticks
    for t in _log_ticks(10 ** lo_l, 10 ** hi_l):
        y = ypix(t)
        canvas.line(left, y, right_edge, y, (225, 225, 225))
        label = _fmt_ms(t)
        canvas.text(left - 8 - canvas.text_width(label), int(y) - 5, label, (60, 60, 60))
    canvas.text(8, top - 4, "MS", (60, 60, 60))
    canvas.line(left, top, left, bottom, (0, 0, 0))
    canvas.line(left, bottom, right_edge, bottom, (0, 0, 0))
    label_w = max(canvas.text_width(r) for r in releases) + 8
    every = max(1, math.ceil(label_w / max((span - left - 40) / max(n - 1, 1), 1)))
    for i, rel in enumerate(releases):
        x = xpix(i)
        canvas.line(x, bottom, x, bottom + 5, (0, 0, 0))
        if i % every == 0 or i == n - 1:
            canvas.text(int(x - canvas.text_width(rel) / 2), bottom + 10, rel, (60, 60, 60))
    canvas.text(int((left + right_edge) / 2 - canvas.text_width("MLX RELEASE") / 2), bottom + 34,
                "MLX RELEASE", (60, 60, 60))

    # the series
    for s in series:
        color = backend_color(s["backend"], backends)
        shape = MARKERS[cases.index(s["case"]) % len(MARKERS)]
        points = [(xpix(i), ypix(v)) for i, v in enumerate(s["values"]) if v is not None and v > 0]
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            canvas.line(x0, y0, x1, y1, color, width=2)
        for x, y in points:
            canvas.marker(x, y, shape, color)

    # legend: colours (backends) on one row, then one row per case (marker)
    y = height + 4
    x = left
    for b in backends:
        canvas.rect(x, y + 3, x + 24, y + 6, backend_color(b, backends))
        x = canvas.text(x + 30, y, b) + 20
    for i, case in enumerate(cases):
        y = height + 4 + 18 * (i + 1)
        canvas.marker(left + 10, y + 5, MARKERS[i % len(MARKERS)], (60, 60, 60))
        canvas.text(left + 30, y, case)
    return encode_png(canvas.pixels)
