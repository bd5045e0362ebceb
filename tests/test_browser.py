"""The report and a replay page in a real browser (pytest-playwright driving the system Chromium).

``playwright install`` cannot download browsers on these machines, so the test uses Debian's ``chromium``
package (``apt-get install -y chromium``) as playwright's executable. Without it the tests skip, saying so.
Checks: no console errors or page errors, every image loads and has alt text, and the replay slider, the
next button and play/pause step the frames.
"""
from __future__ import annotations

import os
import shutil

import pytest

pytest.importorskip("pytest_playwright", reason="pytest-playwright is not installed (pip install pytest-playwright)")

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _chromium() -> str | None:
    for candidate in (os.environ.get("HYPODRIVE_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium",
                      shutil.which("chromium-browser")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's launch arguments, pointed at the system Chromium (skip where there is none)."""
    executable = _chromium()
    if executable is None:
        pytest.skip("no system Chromium: install Debian's package (apt-get install -y chromium) or set "
                    "HYPODRIVE_CHROMIUM to a Chromium binary; playwright cannot download its own browsers here")
    return {**browser_type_launch_args, "executable_path": executable, "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """A report with every figure kind and two replays (one embedded, one past the size cap and linked), and a
    standalone side-by-side replay page."""
    import reports.replay as rr
    from interp.simulation.agent import load_agent
    from interp.replay import build_replay
    from interp.simulation.rollout import RolloutEngine
    from reports.run.html import write_report
    from tests.planted import ROOT
    from tests.test_reports import all_figure_kinds, entry, synthetic_run

    out = tmp_path_factory.mktemp("browser")
    agent = load_agent(ROOT / "checkpoints" / "reference")
    with RolloutEngine(workers=0, slots=1, cache=None) as engine:
        single = build_replay(agent, 5, engine=engine)
        pair = build_replay(agent, 5, ablate_head=1, engine=engine)
    small = rr.replay_figure(single, title="a crashed episode")
    large = rr.replay_figure(pair, title="plain vs head 1 ablated")
    evidence = synthetic_run(0, 1)
    evidence["specs"].append(entry("specs/t.py::test_figures", "every figure kind", figures_=all_figure_kinds()))
    evidence["specs"].append(entry("specs/t.py::test_replays", "replays", figures_=[small, large]))
    cap = sum(len(f) for f in small["frames_png_base64"])  # the first fits exactly, the second is linked
    old = rr.MAX_EMBEDDED_REPLAY_BYTES
    rr.MAX_EMBEDDED_REPLAY_BYTES = cap
    try:
        index = write_report(evidence, out / "report")
    finally:
        rr.MAX_EMBEDDED_REPLAY_BYTES = old
    linked = sorted((out / "report" / "replays").glob("*.html"))
    assert len(linked) == 1
    standalone = rr.write_replay(pair, out / "pair.html")
    return {"index": index, "linked": linked[0], "standalone": standalone, "frames": single.n_frames,
            "pair_frames": pair.n_frames}


def _open(page, path):
    errors = []
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return errors


def _images_load_and_have_alt(page) -> int:
    images = page.evaluate("""() => Array.from(document.images).map(img => ({
        src: img.src.slice(0, 40), ok: img.complete && img.naturalWidth > 0, alt: img.getAttribute('alt') || ''}))""")
    assert images, "no images on the page"
    broken = [i["src"] for i in images if not i["ok"]]
    assert not broken, f"images that did not load: {broken}"
    assert all(i["alt"].strip() for i in images), "every image needs alt text"
    return len(images)


def _frame(player) -> int:
    return int(player.get_attribute("data-frame"))


def _steps_frames(page, player, n_frames: int) -> None:
    image = player.locator("img.replay-frame")
    slider = player.locator("input.replay-slider")
    first_src = image.get_attribute("src")
    assert _frame(player) == 0 and slider.get_attribute("max") == str(n_frames - 1)
    slider.focus()
    page.keyboard.press("ArrowRight")
    assert _frame(player) == 1 and image.get_attribute("src") != first_src
    slider.fill(str(n_frames - 1))
    assert _frame(player) == n_frames - 1
    assert "frame" in player.locator(".caption").inner_text()
    player.locator("button.replay-prev").click()
    assert _frame(player) == n_frames - 2
    player.locator("button.replay-next").click()
    assert _frame(player) == n_frames - 1
    player.locator("button.replay-play").click()  # at the end, play restarts from frame 0 and advances
    page.wait_for_function("el => Number(el.getAttribute('data-frame')) >= 2", arg=player.element_handle(),
                           timeout=10_000)
    player.locator("button.replay-play").click()  # pause
    paused = _frame(player)
    page.wait_for_timeout(1500)
    assert _frame(player) == paused, "pause must stop the player"


def test_report_opens_without_errors_images_load_and_the_replay_slider_steps(page, pages):
    errors = _open(page, pages["index"])
    assert _images_load_and_have_alt(page) >= 9
    players = page.locator(".replay[data-replay]")
    assert players.count() == 1
    _steps_frames(page, players.first, pages["frames"])
    link = page.locator(f'a[href="replays/{pages["linked"].name}"]')
    assert link.count() == 1, "a replay past the size cap is linked"
    assert page.locator("table.head-roles").count() == 1
    assert not errors, errors


def test_linked_and_standalone_replay_pages_play(page, pages):
    for path in (pages["linked"], pages["standalone"]):
        errors = _open(page, path)
        _images_load_and_have_alt(page)
        _steps_frames(page, page.locator(".replay[data-replay]").first, pages["pair_frames"])
        assert not errors, errors
