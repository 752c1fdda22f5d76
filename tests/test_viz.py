import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from srlib import viz  # noqa: E402


def _checker_at(top, left, size=64, patch=12):
    img = np.full((size, size, 3), 128, np.uint8)
    yy, xx = np.mgrid[:patch, :patch]
    img[top:top + patch, left:left + patch] = (((yy + xx) % 2) * 255)[..., None]
    return img


def test_auto_box_finds_the_detailed_region():
    assert viz.auto_box(_checker_at(40, 8), size=12) == (40, 8, 12, 12)


def test_compare_zooms_where_the_first_full_size_image_has_detail():
    hr = _checker_at(4, 44)
    other = _checker_at(44, 4)  # more detail elsewhere in a later image must not move the box
    lr = hr[::4, ::4]  # smaller images are enlarged, never chosen as the reference
    fig = viz.compare({"LR": lr, "HR": hr, "other": other})
    rect = fig.axes[0].patches[0]
    top, left, side = rect.get_y() + 0.5, rect.get_x() + 0.5, rect.get_width()
    assert top <= 4 and top + side >= 4 + 12  # the box covers HR's detailed patch
    assert left <= 44 and left + side >= 44 + 12
    plt.close(fig)


def test_upsample_nearest_repeats_pixels():
    img = np.arange(4, dtype=np.uint8).reshape(2, 2, 1).repeat(3, axis=2)
    up = viz.upsample_nearest(img, (4, 4))
    assert up[:, :, 0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]


def test_before_after_is_static_when_headless(monkeypatch):
    monkeypatch.setenv("SRLIB_HEADLESS", "1")
    a, b = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)
    fig = viz.before_after(a, b)
    view = fig.axes[0].images[0].get_array()
    assert view[0, 0, 0] == 0 and view[0, -1, 0] == 255  # left half before, right half after
    plt.close(fig)


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_before_after_widget_works_under_a_non_inline_backend():
    # Agg is active here (not the inline backend): the widget must build and redraw without
    # calling plt.show(fig), which raises TypeError outside the inline backend.
    a, b = np.zeros((16, 16, 3), np.uint8), np.full((16, 16, 3), 255, np.uint8)
    n_open = len(plt.get_fignums())
    box = viz.before_after(a, b, interactive=True)
    slider, image = box.children
    first = image.value
    assert first[:8] == PNG_MAGIC
    slider.value = 0.1
    assert image.value[:8] == PNG_MAGIC and image.value != first  # the split moved
    assert len(plt.get_fignums()) == n_open  # nothing left open in pyplot


def test_before_after_widget_under_the_inline_backend_and_headless():
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from srlib import viz\n"
        "import matplotlib, matplotlib.pyplot as plt\n"
        "assert 'inline' in matplotlib.get_backend(), matplotlib.get_backend()\n"
        "a, b = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)\n"
        "box = viz.before_after(a, b, interactive=True)\n"
        "box.children[0].value = 0.9\n"
        "fig = viz.before_after(a, b)\n"  # SRLIB_HEADLESS: a static figure, no widget
        "assert hasattr(fig, 'savefig'), type(fig)\n"
        "print('ok')\n")
    env = dict(__import__("os").environ, MPLBACKEND="module://matplotlib_inline.backend_inline",
               SRLIB_HEADLESS="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def test_auto_box_stays_inside_the_evaluated_region():
    img = _checker_at(0, 0, size=64)  # all the detail sits on the top-left border
    assert viz.auto_box(img, size=12) == (0, 0, 12, 12)
    top, left, h, w = viz.auto_box(img, size=12, margin=4)
    assert top >= 4 and left >= 4 and top + h <= 60 and left + w <= 60
    assert top <= 8 and left <= 8  # still as close to the detail as the margin allows
    fig = viz.compare({"HR": img, "other": img}, box_margin=4)
    rect = fig.axes[0].patches[0]
    assert rect.get_y() + 0.5 >= 4 and rect.get_x() + 0.5 >= 4
    plt.close(fig)


def test_static_before_after_is_not_left_open_in_pyplot(monkeypatch):
    monkeypatch.setenv("SRLIB_HEADLESS", "1")
    n_open = len(plt.get_fignums())
    fig = viz.before_after(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8, 3), np.uint8))
    assert len(plt.get_fignums()) == n_open  # shown once as the cell result, never twice
    assert fig.axes[0].images
