"""The web page, end to end in a real headless Chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import ARTIFACTS, SHARED_DATA

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]


def microphone_flags(recording) -> list[str]:
    """Chromium's flags with a fake microphone that plays `recording` (a WAV file) once recording starts."""
    return [
        *FLAGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={recording}",
    ]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is required for the web page tests (scripts/test.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.console_errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.console_errors.append(str(e)))  # type: ignore[attr-defined]
    yield page
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _speak_and_wait_for_playback(page) -> None:
    page.get_by_role("button", name="Speak").click()
    page.wait_for_function("document.body.dataset.speaking === 'playing'", timeout=60_000)
    page.wait_for_function("document.getElementById('player').currentTime > 0", timeout=30_000)
    page.wait_for_selector("#history li", timeout=60_000)


def test_speak_streams_and_plays_with_no_console_errors(live_server, page):
    page.goto(live_server.url + "/")
    page.wait_for_function("document.querySelectorAll('#voice option').length >= 6")
    assert page.locator("#voice optgroup[label='Kokoro'] option").count() >= 5  # voices grouped by engine
    assert page.locator("#voice optgroup[label='Piper'] option").count() >= 1
    assert not page.locator("#download").is_visible()  # nothing to download before anything was spoken
    page.get_by_label("Text").fill("Hello from the browser. This sentence streams while it plays.")
    _speak_and_wait_for_playback(page)
    assert page.locator("#download").is_visible()
    assert "first audio after" in page.locator("#speak-status").inner_text()
    shot(page, "speak")
    assert page.console_errors == []


def test_error_state_shows_and_the_button_comes_back(settings, make_live_server, page):
    server = make_live_server(settings.model_copy(update={"max_text_chars": 40}))
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelectorAll('#voice option').length >= 6")
    page.get_by_label("Text").fill("This text is deliberately longer than the forty characters this server allows.")
    page.get_by_role("button", name="Speak").click()
    error = page.locator("#speak-error")
    error.wait_for(state="visible")
    assert "limit is 40" in error.inner_text()
    assert page.get_by_role("button", name="Speak").is_enabled()
    shot(page, "error")


def test_upload_clone_progress_then_the_voice_speaks(settings, make_live_server, page):
    server = make_live_server(settings.model_copy(update={"enrolment_time_budget_s": 6.0}))
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelectorAll('#voice option').length >= 6")
    page.get_by_label("Name").fill("Browser clone")
    page.get_by_label("Gender (label)").fill("female")
    page.set_input_files("#clone-files", str(SHARED_DATA / "103-1240-0000.flac"))
    page.get_by_role("button", name="Clone").click()
    page.locator("#clone-progress-box").wait_for(state="visible")
    shot(page, "clone-progress")
    page.locator("#clone-result").wait_for(state="visible", timeout=240_000)
    assert "Browser clone" in page.locator("#voice").inner_text()
    assert page.locator("#scores dt").count() >= 2
    assert page.evaluate("document.getElementById('ab-reference').src.startsWith('blob:')")
    shot(page, "clone-ready")
    assert page.evaluate("document.getElementById('voice').selectedOptions[0].textContent").startswith("Browser clone")
    page.get_by_label("Text").fill("Now I speak with the new voice.")
    _speak_and_wait_for_playback(page)
    assert page.console_errors == []


def test_page_asks_for_a_key_once_and_keeps_it(settings, make_live_server, page):
    server = make_live_server(settings.model_copy(update={"api_keys": ["browser-key-1"]}))
    page.goto(server.url + "/")
    dialog = page.get_by_role("dialog")
    dialog.wait_for(state="visible")
    shot(page, "key-dialog")
    page.get_by_label("Key", exact=True).fill("browser-key-1")
    page.get_by_role("button", name="Save").click()
    page.wait_for_function("document.querySelectorAll('#voice option').length >= 6")
    page.reload()
    page.wait_for_function("document.querySelectorAll('#voice option').length >= 6")
    assert not page.get_by_role("dialog").is_visible()


def test_served_from_another_allowed_origin(settings, make_live_server, page):
    site = make_live_server(settings.model_copy(update={"data_dir": settings.data_dir.parent / "site"}))
    origin = site.url.replace("127.0.0.1", "localhost")  # a different origin from the API's
    api = make_live_server(
        settings.model_copy(update={"data_dir": settings.data_dir.parent / "api", "cors_origins": [origin]})
    )
    page.goto(f"{origin}/?api={api.url}")
    page.wait_for_function("document.querySelectorAll('#voice option').length >= 6")
    page.get_by_label("Text").fill("Cross origin speech.")
    _speak_and_wait_for_playback(page)
    assert page.console_errors == []


def test_phone_width_layout_keeps_every_control_usable(live_server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(live_server.url + "/")
    page.wait_for_function("document.querySelectorAll('#voice option').length >= 6")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # no sideways scrolling
    for control in ("#prompt", "#voice", "#speed", "#speak-button", "#clone-name", "#clone-files", "#clone-button"):
        box = page.locator(control).bounding_box()
        assert box is not None and box["width"] > 0
    unlabeled = page.evaluate(
        "[...document.querySelectorAll('input:not([type=hidden]):not([hidden]), select, textarea')]"
        ".filter(e => !e.labels || e.labels.length === 0).map(e => e.id)"
    )
    assert unlabeled == []
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "key-button"  # keyboard reaches the controls in order
    page.screenshot(path=str(ARTIFACTS / "phone.png"), full_page=True)
    context.close()


def test_page_works_under_a_sub_path_behind_nginx(settings, make_live_server, page):
    from reverse_proxy import Nginx

    server = make_live_server(settings.model_copy(update={"allow_public_without_keys": True}))
    with Nginx(server.port) as proxy:  # nginx serves it at /voice/, prefix stripped
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(proxy.url + "/voice/")
        page.wait_for_function("document.querySelectorAll('#voice option').length >= 6")
        page.get_by_label("Text").fill("Spoken under a sub-path.")
        _speak_and_wait_for_playback(page)
    ours = [url for url in requested if url.startswith(proxy.url)]
    assert any(url.endswith("/voice/v1/audio/speech") for url in ours)
    assert all(url.startswith(proxy.url + "/voice/") for url in ours), ours
    assert page.console_errors == []


def test_page_behind_a_proxy_without_keys_says_how_to_add_them(settings, make_live_server, page):
    from reverse_proxy import Nginx

    server = make_live_server(settings)
    with Nginx(server.port) as proxy:
        page.goto(proxy.url + "/voice/")
        error = page.locator("#speak-error")
        error.wait_for(state="visible")
        assert "voxclone keys create" in error.inner_text()


def test_engines_not_enabled_are_shown_with_the_command_that_enables_them(live_server, page):
    page.goto(live_server.url + "/")
    page.wait_for_function("document.querySelectorAll('#voice option').length >= 6")
    page.get_by_text("More engines (not enabled here)").click()
    shown = page.locator("#unavailable").inner_text()
    assert "ElevenLabs" in shown and "VOXCLONE_ELEVENLABS_API_KEY" in shown
    assert "Bark" in shown and "voxclone models pull bark" in shown
    assert "XTTS-v2" in shown and "non-commercial" in shown
    shot(page, "engines")
    assert page.console_errors == []
