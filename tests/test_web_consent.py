"""The Clone panel with consent on, in Chromium with a fake microphone: a browser of its own (the
fake-device flags), so it runs in its own module, after test_web's browser has closed."""

from __future__ import annotations

import pytest
from test_web import CHROMIUM, microphone_flags, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_clone_with_consent_records_the_sentence_the_server_gave(settings, make_live_server, tmp_path):
    """Consent on: the Clone panel shows a fresh sentence; the microphone (Chromium's fake device, fed
    Kokoro reading that very sentence) records it; the voice is cloned with its consent kept."""
    import httpx
    from playwright.sync_api import sync_playwright
    from tone_cloner import ToneCloner

    from voxclone.cloning import Cloners
    from voxclone.runtime import Parts

    strict = settings.model_copy(update={"consent": "on", "clone_engine": "tone"})
    server = make_live_server(strict, Parts(cloners=Cloners([ToneCloner()])))
    microphone = tmp_path / "microphone.wav"

    def say(text: str, path) -> float:
        response = httpx.post(
            f"{server.url}/v1/audio/speech",
            json={"input": text, "voice": "jm_kumo", "response_format": "wav"},
            timeout=120,
        )
        path.write_bytes(response.content)
        return len(response.content) / 48_000  # 16-bit, 24 kHz

    samples = tmp_path / "samples.wav"
    say(
        "The museum opened a new room full of old maps and compasses. We watched the sun set behind the lighthouse.",
        samples,
    )
    flags = microphone_flags(microphone)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=flags)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/")
        page.wait_for_function("document.getElementById('consent-text').textContent.startsWith('“')")
        assert "only with it" in page.locator("#consent-need").inner_text()
        sentence = page.locator("#consent-text").inner_text().strip("“”")
        seconds = say(sentence, microphone)  # the fake microphone opens the file when recording starts
        page.get_by_label("Name").fill("Consenting clone")
        page.set_input_files("#clone-files", str(samples))
        page.get_by_role("button", name="Clone").click()
        page.locator("#clone-error").wait_for(state="visible")
        assert "reading the sentence" in page.locator("#clone-error").inner_text()
        page.locator("#consent-record").click()
        page.wait_for_function("document.getElementById('consent-record').textContent.includes('Stop')")
        page.wait_for_timeout(int(seconds * 1000) + 700)
        page.locator("#consent-record").click()
        page.wait_for_function("document.getElementById('consent-status').textContent === 'Sentence recorded'")
        shot(page, "consent-recorded")
        page.get_by_role("button", name="Clone").click()
        page.locator("#clone-result").wait_for(state="visible", timeout=120_000)
        browser.close()
    assert errors == []
    voice = next(v for v in httpx.get(f"{server.url}/v1/voices").json()["voices"] if v["name"] == "Consenting clone")
    [kept] = httpx.get(f"{server.url}/v1/voices/{voice['voice_id']}").json()["consent"]
    assert kept["text"] == sentence and kept["wer"] <= 0.4
