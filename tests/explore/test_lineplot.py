"""The explorer's canvas renderer (static/lineplot.js) in a real browser, on a page that loads
only it: axis mappings, pixels of lines, gaps and shapes, tick labels worked out by hand,
hover, and the redraw after a resize."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.explore.chromium import CHROMIUM, chromium

LINEPLOT = (
    Path(__file__).resolve().parents[2] / "src/logitlab/ui/explore/static/lineplot.js"
).read_text(encoding="utf-8")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent"),
]

MINUS = "\u2212"
# A plot area 500 px wide (552 - 52 - 0) and 300 px high (360 - 30 - 30).
MARGIN = {"l": 52, "r": 0, "t": 30, "b": 30}


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    with chromium() as b:
        pg = b.new_page(viewport={"width": 800, "height": 600})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.set_content(
            "<!doctype html><html><body style='margin:0'>"
            "<div id='p' style='position:relative;width:552px;height:360px'></div></body></html>"
        )
        pg.add_script_tag(content=LINEPLOT)
        yield pg
        assert errors == []


def draw(page: Any, traces: list[Any], layout: dict[str, Any], width: int = 552) -> Any:
    """Draw into #p (width x 360 px) and return its axes' mappings as numbers."""
    return page.evaluate(
        """async ([traces, layout, width]) => {
          const gd = document.getElementById('p');
          if (gd.style.width !== width + 'px') {
            // a new size: as on a page, drawn once the resize observer has reported it
            gd.style.width = width + 'px';
            await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
          }
          await LinePlot.react(gd, traces, layout);
          const ax = (a) => ({ range: a.range, type: a.type, offset: a._offset, length: a._length,
            ticks: a.ticktext, vals: a.tickvals });
          return { x: ax(gd._fullLayout.xaxis), y: ax(gd._fullLayout.yaxis) };
        }""",
        [traces, layout, width],
    )


def pixel(page: Any, x: float, y: float) -> list[int]:
    """The canvas's RGBA at CSS pixel (x, y) of the div."""
    return page.evaluate(
        """([x, y]) => {
          const c = document.querySelector('#p canvas');
          const k = c.width / c.clientWidth;
          const px = c.getContext('2d').getImageData(Math.floor(x * k), Math.floor(y * k), 1, 1);
          return [...px.data];
        }""",
        [x, y],
    )


def to_px(page: Any, axis: str, v: float) -> float:
    return page.evaluate(
        f"(v) => {{ const a = document.getElementById('p')._fullLayout.{axis};"
        " return a._offset + a.c2p(v); }",
        v,
    )


def flat(y: list[float | None], x: list[float] | None = None, **line: Any) -> dict[str, Any]:
    return {"x": x or [-1, -0.5, 0, 0.5, 1][: len(y)], "y": y, "mode": "lines", "line": line}


def test_linear_axes_map_range_ends_to_the_plot_area_and_back(page: Any) -> None:
    got = draw(
        page,
        [flat([0.2, 0.4, 0.6])],
        {"margin": MARGIN, "xaxis": {"range": [-30, 30]}, "yaxis": {"range": [0, 1]}},
    )
    assert (got["x"]["offset"], got["x"]["length"]) == (52, 500)
    assert (got["y"]["offset"], got["y"]["length"]) == (30, 300)
    ends = page.evaluate(
        """() => {
          const fl = document.getElementById('p')._fullLayout, xa = fl.xaxis, ya = fl.yaxis;
          const back = [-30, -7.25, 0, 12.5, 30].map((v) => xa.p2c(xa.c2p(v)));
          const yback = [0, 0.3, 1].map((v) => ya.p2c(ya.c2p(v)));
          return [xa.c2p(-30), xa.c2p(30), xa.c2p(0), ya.c2p(0), ya.c2p(1), back, yback];
        }"""
    )
    # x: -30 at the area's left edge, 30 at its right, 0 in the middle; y upwards
    assert ends[:5] == [0, 500, 250, 300, 0]
    assert ends[5] == pytest.approx([-30, -7.25, 0, 12.5, 30], abs=1e-12)
    assert ends[6] == pytest.approx([0, 0.3, 1], abs=1e-12)


def test_log_axis_spaces_decades_evenly_and_writes_powers_of_ten(page: Any) -> None:
    got = draw(
        page,
        [flat([1e-3, 1e-1, 10], x=[-1, 0, 1])],
        {"margin": MARGIN, "xaxis": {"range": [-1, 1]}, "yaxis": {"type": "log"}},
    )
    # autorange over log10 of the values, -3 ... 1, padded by 5% of the span (0.2) each side
    assert got["y"]["type"] == "log"
    assert got["y"]["range"] == pytest.approx([-3.2, 1.2])
    assert got["y"]["ticks"] == ["10⁻³", "10⁻²", "10⁻¹", "1", "10¹"]
    ys = [to_px(page, "yaxis", 10.0**k) for k in range(-3, 2)]
    steps = [a - b for a, b in itertools.pairwise(ys)]
    # 300 px for 4.4 decades: 300 / 4.4 px per decade, the same for each
    assert steps == pytest.approx([300 / 4.4] * 4, abs=1e-9)
    assert to_px(page, "yaxis", 10**-3.2) == pytest.approx(330)  # the area's bottom
    assert to_px(page, "yaxis", 10**1.2) == pytest.approx(30)  # its top


@pytest.mark.parametrize(
    ("lo", "hi", "width", "expected"),
    [
        # a 500 px area: about one tick per 60 px (at most 8.3), steps 1, 2 or 5 x 10^k
        (-30, 30, 552, ["−30", "−20", "−10", "0", "10", "20", "30"]),  # 60/8.3 -> 10
        (0, 1, 552, ["0", "0.2", "0.4", "0.6", "0.8", "1"]),  # 1/8.3 -> 0.2
        (-300, 300, 552, ["−300", "−200", "−100", "0", "100", "200", "300"]),
        (0.001, 0.0035, 552, ["0.001", "0.0015", "0.002", "0.0025", "0.003", "0.0035"]),
        # a phone's 240 px area: at most 4 ticks, 600/4 = 150 -> 200
        (-300, 300, 292, ["−200", "0", "200"]),
        (-30, 30, 292, ["−20", "0", "20"]),
    ],
)
def test_tick_labels_are_nice_values(
    page: Any, lo: float, hi: float, width: int, expected: list[str]
) -> None:
    got = draw(
        page,
        [flat([0.5, 0.5], x=[lo, hi])],
        {"margin": MARGIN, "xaxis": {"range": [lo, hi]}},
        width,
    )
    assert got["x"]["ticks"] == [t.replace("−", MINUS) for t in expected]
    # each label as drawn (its text's width measured here) inside the canvas, clear of its
    # neighbours, touching its tick (moved by at most half its width at the canvas's edges)
    boxes, ticks = page.evaluate(
        """() => {
          const gd = document.getElementById('p'), xa = gd._fullLayout.xaxis;
          const ctx = document.createElement('canvas').getContext('2d');
          ctx.font = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
          return [xa._labelboxes.map((b, k) => [b[0], b[1], ctx.measureText(xa.ticktext[k]).width]),
                  xa.tickvals.map((v) => xa._offset + xa.c2p(v))];
        }"""
    )
    for (_, a1, _), (b0, _, _) in itertools.pairwise(boxes):
        assert a1 < b0, boxes
    for (b0, b1, w), x in zip(boxes, ticks, strict=True):
        assert b1 - b0 == pytest.approx(w) and abs((b0 + b1) / 2 - x) <= w / 2 + 1
    assert boxes[-1][1] <= width and boxes[0][0] >= 0


def test_linear_y_labels_and_zero_line(page: Any) -> None:
    got = draw(
        page,
        [flat([-0.5, 0.0, 1.5], x=[-1, 0, 1])],
        {"margin": MARGIN, "xaxis": {"range": [-1, 1]}, "yaxis": {"zeroline": True}},
    )
    # -0.5 ... 1.5 padded by 0.1: [-0.6, 1.6]; 300 px / 40 = 7.5 ticks -> 2.2/7.5 -> 0.5
    assert got["y"]["range"] == pytest.approx([-0.6, 1.6])
    assert got["y"]["ticks"] == [MINUS + "0.5", "0", "0.5", "1", "1.5"]


def test_a_thick_line_has_its_colour_and_a_null_gap_is_background(page: Any) -> None:
    draw(
        page,
        [flat([0.5, 0.5, None, 0.5, 0.5], color="#ff0000", width=6)],
        {"margin": MARGIN, "xaxis": {"range": [-1, 1]}, "yaxis": {"range": [0, 1]}},
    )
    y = to_px(page, "yaxis", 0.5)
    assert y == 180  # 30 + 300 * (1 - 0.5)
    for x in (-0.75, -0.6, 0.6, 0.9):  # on the drawn segments, -1 ... -0.5 and 0.5 ... 1
        assert pixel(page, to_px(page, "xaxis", x), y) == [255, 0, 0, 255], x
    for x in (-0.25, -0.1, 0.1, 0.25):  # in the gap (the point at 0 is null): white
        assert pixel(page, to_px(page, "xaxis", x), y) == [255, 255, 255, 255], x


def test_a_dashed_line_leaves_gaps(page: Any) -> None:
    draw(
        page,
        [flat([0.5, 0.5], x=[-1, 1], color="#00ff00", width=4, dash="dash")],
        {"margin": MARGIN, "xaxis": {"range": [-1, 1]}, "yaxis": {"range": [0, 1]}},
    )
    # Plotly's "dash": 3w on, 3w off (w = 4): 12 px of green, then 12 px of white
    row = [pixel(page, 52 + k + 0.5, 180) for k in range(0, 48)]
    green = [p == [0, 255, 0, 255] for p in row]
    assert (
        green[1:11] == [True] * 10 and green[13:23] == [False] * 10 and green[25:35] == [True] * 10
    )


def test_a_rect_shape_shades_its_x_interval(page: Any) -> None:
    draw(
        page,
        [flat([0.1, 0.1], x=[-1, 1])],
        {
            "margin": MARGIN,
            "xaxis": {"range": [-1, 1]},
            "yaxis": {"range": [0, 1]},
            "shapes": [
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": "paper",
                    "x0": 0.2,
                    "x1": 0.6,
                    "y0": 0,
                    "y1": 1,
                    "fillcolor": "#0000ff",
                    "opacity": 0.5,
                    "layer": "below",
                    "line": {"width": 0},
                }
            ],
        },
    )
    y = to_px(page, "yaxis", 0.7)  # above the trace, off the grid lines (0.2 steps)
    # blue at opacity 0.5 over white: (127.5, 127.5, 255), rounded either way
    inside = pixel(page, to_px(page, "xaxis", 0.3), y)
    assert inside[2] == 255 and all(abs(c - 127.5) <= 1 for c in inside[:2]), inside
    assert pixel(page, to_px(page, "xaxis", 0.55), y)[:2] == inside[:2]
    for x in (0.1, 0.7, -0.7):
        assert pixel(page, to_px(page, "xaxis", x), y) == [255, 255, 255, 255], x


def test_hover_reports_the_nearest_point(page: Any) -> None:
    draw(
        page,
        [
            {
                "x": [-1, 0, 0.5, 1],
                "y": [0.1, 0.25, 0.75, 0.9],
                "mode": "lines",
                "name": "a",
                "line": {"color": "#f00", "width": 2},
                "hovertemplate": "z=%{x}<br>%{y}<extra>a</extra>",
            },
            {
                "x": [-0.5],
                "y": [0.9],
                "yaxis": "y2",
                "mode": "markers",
                "name": "flags",
                "marker": {"symbol": "square", "size": 7, "color": ["#00f"]},
                "text": ["a: log clamped, z = -0.7 … -0.3"],
                "hovertemplate": "%{text}<extra></extra>",
            },
        ],
        {"margin": MARGIN, "xaxis": {"range": [-1, 1]}, "yaxis": {"range": [0, 1]}},
    )
    box = page.locator("#p").bounding_box()
    # 3 px right of and below the point (0.5, 0.75) of trace a
    page.mouse.move(
        box["x"] + to_px(page, "xaxis", 0.5) + 3, box["y"] + to_px(page, "yaxis", 0.75) + 3
    )
    tip = page.locator("#p .lp-tip")
    assert tip.is_visible()
    assert tip.inner_text() == "a\nz=0.5\n0.75"
    # the marker at x = -0.5, paper y 0.9 on the overlay axis: its text
    page.mouse.move(box["x"] + to_px(page, "xaxis", -0.5) - 2, box["y"] + 30 + 0.1 * 300 + 1)
    assert tip.inner_text() == "a: log clamped, z = -0.7 … -0.3"
    page.mouse.move(box["x"] + box["width"] + 50, box["y"] + 5)
    assert tip.is_hidden()


def test_a_resize_redraws_and_fires_afterplot(page: Any) -> None:
    draw(page, [flat([0.2, 0.4])], {"margin": MARGIN, "xaxis": {"range": [-30, 30]}})
    got = page.evaluate(
        """async () => {
          const gd = document.getElementById('p');
          let fired = 0;
          gd.addEventListener('afterplot', () => { fired += 1; });
          gd.style.width = '452px';
          await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
          const c = gd.querySelector('canvas');
          return [fired, gd._fullLayout.xaxis._length, c.clientWidth, c.getAttribute('role'),
            c.getAttribute('aria-label')];
        }"""
    )
    assert got[:4] == [1, 400, 452, "img"]
    assert "from -30 to 30" in got[4]


def test_crisp_at_the_device_pixel_ratio(page: Any) -> None:
    pg = page.context.browser.new_page(
        viewport={"width": 800, "height": 600}, device_scale_factor=2
    )
    pg.set_content(
        "<!doctype html><html><body style='margin:0'>"
        "<div id='p' style='position:relative;width:552px;height:360px'></div></body></html>"
    )
    pg.add_script_tag(content=LINEPLOT)
    draw(
        pg,
        [flat([0.5, 0.5], x=[-1, 1], color="#ff0000", width=1)],
        {"margin": MARGIN, "xaxis": {"range": [-1, 1]}, "yaxis": {"range": [0, 1]}},
    )
    size = pg.evaluate(
        "(() => { const c = document.querySelector('#p canvas');"
        " return [c.width, c.height, c.clientWidth, c.clientHeight]; })()"
    )
    assert size == [1104, 720, 552, 360]
    # a 1 px line centred on y = 180 CSS px covers device rows 359 and 360 in full colour
    assert pixel(pg, 300, 179.75) == [255, 0, 0, 255]
    assert pixel(pg, 300, 180.25) == [255, 0, 0, 255]
    assert pixel(pg, 300, 180.75) == [255, 255, 255, 255]
    pg.close()
