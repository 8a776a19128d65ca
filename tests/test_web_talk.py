"""The Talk panel, end to end in headless Chromium with a fake microphone playing a real recording."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from conftest import ARTIFACTS, SHARED_DATA, TONE, wer
from realtime_client import utterance
from test_web import CHROMIUM, microphone_flags

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def microphone(tmp_path_factory):
    """A WAV the fake microphone loops: one sentence, then long enough a silence for the reply."""
    speech = utterance(
        SHARED_DATA / "1088-129236-0000.flac"
    )  # "Every promise of the soul has innumerable fulfilments."
    path = tmp_path_factory.mktemp("mic") / "sentence.wav"
    soundfile.write(
        path,
        np.concatenate([np.zeros(12_000), speech, np.zeros(24_000 * 8)]).astype(np.float32),
        24_000,
        subtype="PCM_16",
    )
    return path


@pytest.fixture(scope="module")
def talking_browser(microphone):
    from playwright.sync_api import sync_playwright

    flags = microphone_flags(microphone)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=flags)
        yield browser
        browser.close()


def test_talk_hands_free_hears_the_microphone_and_answers_in_the_voice(settings, make_live_server, talking_browser):
    server = make_live_server(
        settings.model_copy(update={"api_keys": ["talk-key-1"], "transcription_model": "tiny.en"})
    )
    context = talking_browser.new_context(viewport={"width": 1200, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script("window.localStorage.setItem('voxclone.key', 'talk-key-1')")  # keys on: the page sends it
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelectorAll('#voice option').length >= 1")
    page.select_option("#voice", TONE)
    page.get_by_role("button", name="Start talking").click()
    page.wait_for_function("document.body.dataset.talk === 'listening'", timeout=30_000)
    assert "says back what you say" in page.locator("#talk-mode").inner_text()
    page.wait_for_selector("#talk-log li.user", timeout=60_000)
    heard = page.locator("#talk-log li.user .words").first.inner_text()
    assert wer("every promise of the soul has innumerable fulfilments", heard) < 0.3
    page.wait_for_function("Number(document.body.dataset.talkAudio || 0) > 0", timeout=60_000)
    page.wait_for_function(
        "document.querySelector('#talk-log li.assistant .words')?.textContent.length > 10", timeout=60_000
    )
    assert (
        wer(heard, page.locator("#talk-log li.assistant .words").first.inner_text().replace("…(interrupted)", "")) < 0.5
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "talk.png"), full_page=True)
    page.get_by_role("button", name="Stop talking").click()
    assert page.evaluate("document.body.dataset.talk") == "off"
    assert errors == []
    context.close()
