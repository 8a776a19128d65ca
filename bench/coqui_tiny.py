"""Load time and first audio of the coqui engines on the tiny test models (issue 18), so regressions show.

    .venv/bin/python bench/coqui_tiny.py [--repeat 3] [--torch-threads 1]

Builds the tiny Bark, XTTS-v2 and OpenVoice models (tests/make_coqui_models.py) in a temporary folder,
then, in this process, through the engines' and the filter's own code (as the server runs them):
- import: seconds to import torch and coqui-tts's model modules (paid once per process);
- load: seconds from nothing loaded to the model ready (Bark, XTTS: engine.load(); OpenVoice: the
  converter), median of --repeat fresh loads;
- first audio: seconds of the first synthesis after a load (Bark: stock speaker en_speaker_0; XTTS:
  conditioning from a LibriSpeech clip, then a sentence; OpenVoice: converting 2 s of audio), and the
  median of --repeat more calls. These models speak noise: the figures track voxclone's and coqui's
  overhead, not the real models' speed. Writes bench/out/coqui_tiny.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from server import save

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))
SAMPLE = TESTS.parents[1] / "shared" / "data" / "librispeech_train-clean-100" / "103-1240-0000.flac"
TEXT = "The keeper lit the lamp."


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def engine_figures(engine, speak, repeat: int) -> dict[str, float]:
    loads, firsts, again = [], [], []
    for _ in range(repeat):
        engine.unload_if_idle(0.0)
        loads.append(timed(engine.load)[0])
        firsts.append(timed(speak)[0])
        again.append(timed(speak)[0])
    return {
        "load_s": round(statistics.median(loads), 2),
        "first_audio_s": round(statistics.median(firsts), 2),
        "next_audio_s": round(statistics.median(again), 2),
    }


def _import_coqui() -> None:
    import TTS.tts.models.bark
    import TTS.tts.models.xtts
    import TTS.vc.models.openvoice  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--torch-threads", type=int, default=1, help="VOXCLONE_TORCH_THREADS (0: torch's default)")
    args = parser.parse_args()
    import_s, _ = timed(_import_coqui)
    from make_coqui_models import bark, openvoice, xtts

    from voxclone.audio import REFERENCE_RATE, decode
    from voxclone.engines import SpeakOptions, VoiceSpec
    from voxclone.engines.bark import BarkEngine
    from voxclone.engines.xtts import XttsEngine
    from voxclone.filters.openvoice import Converter
    from voxclone.settings import Settings

    result: dict[str, object] = {"import_s": round(import_s, 2), "torch_threads": args.torch_threads}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        built, _ = timed(lambda: (bark(out), xtts(out), openvoice(out)))
        result["build_tiny_models_s"] = round(built, 2)
        settings = Settings(
            data_dir=out / "data",
            model_paths={"bark": out / "bark", "xtts_v2": out / "xtts_v2"},
            xtts_accept_cpml=True,
            torch_threads=args.torch_threads,
        )
        options = SpeakOptions()
        engine = BarkEngine.from_settings(settings)
        stock = VoiceSpec("en_speaker_0", 1, {"speaker": "en_speaker_0"})
        result["bark"] = engine_figures(engine, lambda: list(engine.synthesize(TEXT, stock, options)), args.repeat)
        reference = decode(SAMPLE.read_bytes(), target_rate=REFERENCE_RATE, max_seconds=30)
        xtts_engine = XttsEngine.from_settings(settings)
        latents = out / "latents.npz"

        def xtts_first() -> None:
            latents.write_bytes(xtts_engine.conditioning(reference, REFERENCE_RATE))
            list(xtts_engine.synthesize(TEXT, VoiceSpec("clone", 1, {"latents": str(latents)}), options))

        result["xtts"] = engine_figures(xtts_engine, xtts_first, args.repeat)
        audio = reference[: 2 * REFERENCE_RATE]
        loads, firsts, again = [], [], []
        for _ in range(args.repeat):
            took, converter = timed(lambda: Converter(out / "openvoice_v2"))
            loads.append(took)
            convert = partial(converter.convert, audio, REFERENCE_RATE, converter.embedding(audio, REFERENCE_RATE))
            firsts.append(timed(convert)[0])
            again.append(timed(convert)[0])
        result["openvoice"] = {
            "load_s": round(statistics.median(loads), 2),
            "first_convert_2s_s": round(statistics.median(firsts), 2),
            "next_convert_2s_s": round(statistics.median(again), 2),
        }
    result["audio"] = {"bark_rate": 24_000, "xtts_rate": 24_000, "note": "tiny random models: noise, not speech"}
    save("coqui_tiny", result)


if __name__ == "__main__":
    main()
