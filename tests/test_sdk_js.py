"""The official JavaScript SDKs (npm `openai`, `@elevenlabs/elevenlabs-js`, pinned in
tests/sdk/js/package-lock.json) against a live server: tests/sdk/js/run.mjs makes every call in
tests/sdk/calls.json that has a `js` name and records what came back; the checks here are on that.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import OPENAI_FORMAT_RATES, REPO, SDK_KEY, SHARED_DATA, Checks, LiveServer, decode_audio, sdk_calls

pytestmark = pytest.mark.slow  # node and the npm SDKs, one process per call

JS_DIR = REPO / "tests" / "sdk" / "js"
JS_CALLS = sdk_calls("js")
Result = dict[str, Any]


@pytest.fixture(scope="module")
def results(sdk_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (scripts/test.sh installs Debian's nodejs and npm)")
    if not (JS_DIR / "node_modules" / "openai").is_dir():
        pytest.skip("the npm packages are not installed: run `npm ci` in tests/sdk/js (scripts/test.sh does)")
    out = tmp_path_factory.mktemp("sdk-js")
    clip = SHARED_DATA / "103-1240-0000.flac"
    run = subprocess.run(
        [node, "run.mjs", sdk_server.url, SDK_KEY, str(out), str(clip)],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    return json.loads((out / "results.json").read_text())


check = CHECKS = Checks()  # by call id; each listed call must have one


def _speech(result: Result, fmt: str, rate: int, seconds: tuple[float, float] = (0.8, 4.0)) -> None:
    samples, got = decode_audio(Path(result["audio"]).read_bytes(), fmt, rate)
    assert got == rate
    assert seconds[0] < samples.size / rate < seconds[1] and samples.std() > 0.01


for _fmt, _rate in OPENAI_FORMAT_RATES.items():
    check(f"openai.speech.{_fmt}")(lambda r, f=_fmt, rate=_rate: _speech(r, f, rate))


@check("openai.speech.stream")
@check("elevenlabs.tts.stream")
def _(r: Result) -> None:
    assert r["chunks"] > 1  # arrived in pieces, as synthesised
    _speech(r, "pcm", 24_000, (3.0, 9.0))


@check("openai.speech.sse")
def _(r: Result) -> None:
    assert r["types"][-1] == "speech.audio.done" and set(r["types"][:-1]) == {"speech.audio.delta"}
    _speech(r, "pcm", 24_000)


@check("openai.models.list")
def _(r: Result) -> None:
    assert {"kokoro", "piper"} <= {m["id"] for m in r["models"]}
    assert all(m["object"] == "model" and m["created"] > 0 for m in r["models"])


@check("openai.error.not_found")
def _(r: Result) -> None:
    assert (r["class"], r["status"], r["code"]) == ("NotFoundError", 404, "voice_not_found")
    assert "no voice named 'nobody-here'" in r["body"]["message"]


@check("openai.error.auth")
def _(r: Result) -> None:
    assert (r["class"], r["status"], r["type"]) == ("AuthenticationError", 401, "authentication_error")
    assert "valid API key" in r["body"]["message"]


@check("elevenlabs.tts.convert")
def _(r: Result) -> None:
    _speech(r, "mp3", 44_100)


@check("elevenlabs.tts.convert_pcm")
def _(r: Result) -> None:
    assert 3.0 < r["normal"] < 9.0 and r["fast"] < 0.7 * r["normal"]


@check("elevenlabs.voices.get_all")
def _(r: Result) -> None:
    by_id = {v["voiceId"]: v for v in r["voices"]}
    assert {"jm_kumo", "jf_alpha", "joe"} <= set(by_id)
    assert by_id["joe"]["category"] == "premade" and by_id["jm_kumo"]["settings"]["speed"] == 1.0


@check("elevenlabs.voices.search")
def _(r: Result) -> None:
    pages = r["pages"]
    seen = [voice_id for page in pages for voice_id in page["ids"]]
    assert sorted(seen) == sorted(r["all"]) and len(seen) == len(r["all"])
    assert all(len(page["ids"]) <= 2 and page["totalCount"] == len(r["all"]) for page in pages)
    assert [page["hasMore"] for page in pages] == [True] * (len(pages) - 1) + [False]
    assert r["found"] == ["jm_kumo"] and set(r["premade"]) == {"premade"}


@check("elevenlabs.voices.get")
def _(r: Result) -> None:
    assert (r["voice"]["voiceId"], r["voice"]["category"]) == ("jf_alpha", "premade")


@check("elevenlabs.voices.ivc.create")
def _(r: Result) -> None:
    assert r["status"] == "ready" and r["voice"]["name"] == "JS clone" and r["voice"]["category"] == "cloned"
    _speech(r, "mp3", 44_100)


@check("elevenlabs.voices.ivc.create_duplicate")
def _(r: Result) -> None:
    assert r["first"] != r["second"]
    assert r["byName"]["status"] == 409
    assert (
        r["first"] in r["byName"]["body"]["detail"]["message"]
        and r["second"] in r["byName"]["body"]["detail"]["message"]
    )


@check("elevenlabs.voices.update")
def _(r: Result) -> None:
    assert (r["status"], r["name"], r["description"], r["labels"]) == (
        "ok",
        "JS after",
        "renamed",
        {"accent": "british"},
    )


@check("elevenlabs.voices.delete")
def _(r: Result) -> None:
    assert r["status"] == "ok" and r["after"]["status"] == 404


@check("elevenlabs.voices.settings.get_default")
def _(r: Result) -> None:
    assert (r["settings"]["speed"], r["settings"]["stability"], r["settings"]["similarityBoost"]) == (1.0, 0.5, 0.75)


@check("elevenlabs.voices.settings.get")
def _(r: Result) -> None:
    assert r["settings"]["speed"] == 1.0


@check("elevenlabs.voices.settings.update")
def _(r: Result) -> None:
    assert r["status"] == "ok" and (r["settings"]["speed"], r["settings"]["stability"]) == (2.0, 0.3)
    assert r["after"] < 0.7 * r["before"]  # the stored speed is the voice's default now
    assert r["asked"] == pytest.approx(r["before"], rel=0.1)


@check("elevenlabs.models.list")
def _(r: Result) -> None:
    models = {m["modelId"]: m for m in r["models"]}
    assert {"kokoro", "piper"} <= set(models) and models["kokoro"]["canDoTextToSpeech"]
    assert models["kokoro"]["maximumTextLengthPerRequest"] == 5000


@check("elevenlabs.user.subscription.get")
def _(r: Result) -> None:
    before, after = r["before"], r["after"]
    assert after["characterCount"] == before["characterCount"] + len("Counting these characters.")
    assert after["characterLimit"] - after["characterCount"] >= 5000
    assert after["voiceLimit"] == 200 and after["voiceSlotsUsed"] == r["clones"]


@check("elevenlabs.error.not_found")
def _(r: Result) -> None:
    assert r["status"] == 404 and r["body"]["detail"]["status"] == "voice_not_found"
    assert "no voice named 'nobody-here'" in r["body"]["detail"]["message"]


@check("elevenlabs.error.auth")
def _(r: Result) -> None:
    assert r["status"] == 401 and "valid API key" in r["body"]["detail"]["message"]


@pytest.mark.parametrize("call", JS_CALLS, ids=[c["id"] for c in JS_CALLS])
def test_js_sdk_call_works_against_voxclone(results: dict[str, Result], call: dict) -> None:
    result = results[call["id"]]
    assert result["ok"], result.get("error")
    CHECKS[call["id"]](result)


def test_every_documented_js_call_is_checked() -> None:
    assert set(CHECKS) == {c["id"] for c in JS_CALLS}


def test_the_sdks_under_test_are_the_pinned_ones() -> None:
    pins = json.loads((JS_DIR / "package.json").read_text())["dependencies"]
    locked = json.loads((JS_DIR / "package-lock.json").read_text())["packages"]
    for package, pin in pins.items():
        assert locked[f"node_modules/{package}"]["version"] == pin
        installed = JS_DIR / "node_modules" / package / "package.json"
        if installed.exists():
            assert json.loads(installed.read_text())["version"] == pin
