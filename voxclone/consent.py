"""Consent to be cloned: the speaker reads a fresh random sentence aloud, and voxclone checks both the
words (Whisper) and that the reader is the person in the samples (the speaker encoder cloning uses).

A challenge (`issue`) is a short sentence nobody could have recorded in advance, valid for a few
minutes and for one attempt: it is kept in the library's database, so every process of a server
(and every machine sharing a PostgreSQL library) shares it, and claiming it is one UPDATE, so two
requests can never both use it. A recording that passes is kept with the voice (`consent/<n>.wav` and `.json` among its files: the recording, the
sentence, what Whisper heard, both scores, the time and the key id), so deleting the voice deletes it.
Every decision goes to the audit log.

Thresholds were chosen on 20 LibriSpeech speaker pairs (bench/consent.py; README "Consent").
"""

from __future__ import annotations

import io
import json
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import numpy as np
import soundfile
from sqlalchemy import Column, Float, Table, Text, and_, delete, insert, select, update

from .asr import word_error_rate
from .audio import REFERENCE_RATE, decode
from .audit import AuditLog
from .blobs import BlobStore
from .cloning.prepare import Sample, prepare
from .database import Database, metadata
from .errors import ConsentRefused
from .settings import Settings

if TYPE_CHECKING:
    from .listeners import Listeners

MAX_WER = 0.4  # at most 4 words in 10 misheard: Whisper tiny.en on a phone microphone, not a stranger's text
MAX_RECORDING_S = 30.0
_CONSENT = "consent/"
_MIN_SAMPLE_S = 1.5  # samples shorter than this give unreliable d-vectors; they are judged together
challenges = Table(
    "consent_challenges",
    metadata,
    Column("id", Text, primary_key=True),
    Column("text", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float),
)

# Sentences are drawn from these: common, easy to say and to recognise, about 2.6e8 different ones.
_ADJECTIVES = (
    "quiet",
    "golden",
    "purple",
    "gentle",
    "sleepy",
    "happy",
    "silver",
    "little",
    "clever",
    "bright",
    "wooden",
    "frozen",
    "busy",
    "lucky",
    "hungry",
    "orange",
    "tiny",
    "ancient",
    "yellow",
    "brave",
)
_NOUNS = (
    ("rabbits", "rabbit"),
    ("lanterns", "lantern"),
    ("sailors", "sailor"),
    ("dragons", "dragon"),
    ("farmers", "farmer"),
    ("kittens", "kitten"),
    ("pilots", "pilot"),
    ("robots", "robot"),
    ("bakers", "baker"),
    ("parrots", "parrot"),
    ("painters", "painter"),
    ("tigers", "tiger"),
    ("monkeys", "monkey"),
    ("engines", "engine"),
    ("candles", "candle"),
    ("turtles", "turtle"),
    ("doctors", "doctor"),
    ("penguins", "penguin"),
    ("wizards", "wizard"),
    ("camels", "camel"),
)
_VERBS = (
    "jumped",
    "danced",
    "waited",
    "slept",
    "landed",
    "travelled",
    "rested",
    "sang",
    "walked",
    "played",
    "gathered",
    "wandered",
    "vanished",
    "shouted",
    "laughed",
)
_PLACES = ("over", "under", "behind", "beside", "near", "inside", "around", "across", "past", "beyond")
_TIMES = (
    "this morning",
    "last winter",
    "every Sunday",
    "at midnight",
    "in the spring",
    "after dinner",
    "before sunrise",
    "all summer",
    "on Friday",
    "at noon",
)


def sentence(rng: secrets.SystemRandom | None = None) -> str:
    """A random sentence of nine or ten words, e.g. "Sleepy rabbits danced behind the golden lantern this morning."."""
    r = rng or secrets.SystemRandom()
    first, second = r.sample(_ADJECTIVES, 2)
    (plural, _), (_, single) = r.sample(_NOUNS, 2)
    return f"{first.capitalize()} {plural} {r.choice(_VERBS)} {r.choice(_PLACES)} the {second} {single} {r.choice(_TIMES)}."


@dataclass(frozen=True)
class Challenge:
    """A sentence to read aloud, and the id that proves which one it was; one attempt, before `expires_at`."""

    id: str
    text: str
    expires_at: float


@dataclass(frozen=True)
class Consent:
    """What a client sent to prove consent: the challenge id and the recording of it being read."""

    challenge_id: str
    file_name: str
    data: bytes


@dataclass(frozen=True)
class Actor:
    """Who asks: the id of the key used (None with keys off), and whether keys are on (a public server)."""

    key_id: str | None = None
    keys_on: bool = False


@dataclass(frozen=True)
class Evidence:
    """A checked consent: the recording as heard (mono, REFERENCE_RATE) and what was checked."""

    audio: np.ndarray
    record: dict[str, Any]


class Consents:
    """Challenges, checks and the evidence kept with each voice."""

    def __init__(self, settings: Settings, database: Database, listeners: Listeners, audit: AuditLog) -> None:
        self.settings = settings
        self.database = database
        self.listeners = listeners
        self.audit = audit
        self.ttl_s = settings.consent_ttl_s

    def required(self, actor: Actor) -> bool:
        """Whether cloning needs consent: the administrator's setting, or (auto) whenever keys are on."""
        mode: Literal["auto", "on", "off"] = self.settings.consent
        return mode == "on" or (mode == "auto" and actor.keys_on)

    # Challenges ---------------------------------------------------------------------------------

    def issue(self, text: str | None = None) -> Challenge:
        """A new challenge (a random sentence unless `text` is given); expired ones are forgotten now."""
        now = time.time()
        challenge = Challenge(id=secrets.token_urlsafe(16), text=text or sentence(), expires_at=now + self.ttl_s)
        row = {"id": challenge.id, "text": challenge.text, "created_at": now, "expires_at": challenge.expires_at}
        with self.database.write() as db:
            db.execute(delete(challenges).where(challenges.c.expires_at < now - self.ttl_s))
            db.execute(insert(challenges).values(row))
        return challenge

    def _claim(self, challenge_id: str, actor: Actor) -> str:
        """The challenge's sentence, marking it used; ConsentRefused if it is unknown, expired or used."""
        now = time.time()
        unused = and_(challenges.c.id == challenge_id, challenges.c.used_at.is_(None), challenges.c.expires_at >= now)
        with self.database.write() as db:
            claimed = db.execute(update(challenges).where(unused).values(used_at=now)).rowcount
            query = select(challenges.c.text, challenges.c.expires_at, challenges.c.used_at)
            row = db.execute(query.where(challenges.c.id == challenge_id)).first()
        if claimed == 1 and row is not None:
            return str(row[0])
        if row is None:
            reason = "unknown consent_challenge_id; get one from GET /v1/voices/consent-challenge"
        elif row[2] is not None:
            reason = "this consent challenge was already used; get a new one and record it again"
        else:
            reason = "this consent challenge expired; get a new one and record it again"
        self._refuse("challenge", reason, actor, challenge_id=challenge_id[:40])

    # Checking -----------------------------------------------------------------------------------

    def check(
        self, consent: Consent | None, samples: list[Sample], actor: Actor, *, voice_name: str
    ) -> Evidence | None:
        """Check a consent recording against its challenge and the speaker of `samples` (blocking).

        None when consent is not required and none was sent; ConsentRefused (403) naming the failed
        check otherwise; BadAudio (422) when the recording cannot be used at all (the challenge is spent).
        """
        if consent is None:
            if self.required(actor):
                self._refuse(
                    "missing",
                    "this server clones a voice only with its speaker's consent: send consent_challenge_id "
                    "and consent (a recording of the speaker reading the challenge sentence)",
                    actor,
                    voice_name=voice_name,
                )
            return None
        text = self._claim(consent.challenge_id, actor)
        audio = decode(consent.data, target_rate=REFERENCE_RATE, max_seconds=MAX_RECORDING_S)
        spoken = prepare(consent.data, consent.file_name or "consent", max_seconds=MAX_RECORDING_S)
        heard = self.listeners.transcriber.transcribe(spoken.audio, REFERENCE_RATE)
        wer = round(word_error_rate(text, heard), 3)
        similarity = round(self.similarity(spoken.audio, samples), 3)
        least = self.settings.consent_min_similarity
        scores = {"wer": wer, "similarity": similarity, "max_wer": MAX_WER, "min_similarity": least}
        details = {"challenge_id": consent.challenge_id[:40], "voice_name": voice_name, **scores}
        if wer > MAX_WER:
            self._refuse(
                "words",
                f"the consent recording does not say the challenge sentence (word error rate {wer:.2f}, "
                f"at most {MAX_WER} allowed); read it again clearly",
                actor,
                heard_words=len(heard.split()),
                **details,
            )
        if similarity < least:
            self._refuse(
                "speaker",
                f"the consent recording is not the same speaker as the samples (similarity "
                f"{similarity:.2f}, at least {least} needed); the person cloned must read the sentence",
                actor,
                **details,
            )
        record = {
            **details,
            "text": text,
            "heard": heard,
            "verified_at_unix": round(time.time(), 3),
            "key_id": actor.key_id,
            "seconds": round(audio.size / REFERENCE_RATE, 2),
        }
        self.audit.record("consent.accepted", key_id=actor.key_id, **details)
        return Evidence(audio=audio, record=record)

    def similarity(self, spoken: np.ndarray, samples: list[Sample]) -> float:
        """The d-vector cosine of the reading to the samples: to each sample long enough to judge alone
        (the least of them, so one stranger's file among the speaker's own fails), else to all together."""
        encoder = self.listeners.encoder
        reading = encoder.embed(spoken, REFERENCE_RATE)
        long_enough = [s.audio for s in samples if s.speech_seconds >= _MIN_SAMPLE_S]
        groups = long_enough or [np.concatenate([s.audio for s in samples])]
        return min(float(reading @ encoder.embed(audio, REFERENCE_RATE)) for audio in groups)

    def _refuse(self, check: str, message: str, actor: Actor, **details: Any) -> NoReturn:
        self.audit.record("consent.refused", check=check, key_id=actor.key_id, **details)
        raise ConsentRefused(
            message, check=check, scores={k: v for k, v in details.items() if k in ("wer", "similarity")}
        )

    # Evidence -----------------------------------------------------------------------------------

    @staticmethod
    def store(blobs: BlobStore, voice_id: str, evidence: Evidence) -> dict[str, Any]:
        """Keep a checked consent with the voice: `consent/<n>.wav`, then `<n>.json` (listed once both exist)."""
        number = 1 + max((int(n) for n in _numbers(blobs, voice_id, ".json")), default=0)
        wav = io.BytesIO()
        soundfile.write(wav, evidence.audio, REFERENCE_RATE, format="WAV", subtype="PCM_16")
        record = {"consent_id": str(number), **evidence.record}
        blobs.put(
            voice_id,
            {f"{_CONSENT}{number}.wav": wav.getvalue(), f"{_CONSENT}{number}.json": json.dumps(record).encode()},
        )
        return record

    @staticmethod
    def records(blobs: BlobStore, voice_id: str) -> list[dict[str, Any]]:
        """The consents kept with a voice, oldest first."""
        recorded = set(_numbers(blobs, voice_id, ".wav"))
        numbers = sorted((n for n in _numbers(blobs, voice_id, ".json") if n in recorded), key=int)
        return [json.loads(blobs.get(voice_id, f"{_CONSENT}{n}.json") or b"{}") for n in numbers]

    @staticmethod
    def recording(blobs: BlobStore, voice_id: str, consent_id: str) -> bytes | None:
        """The WAV of one kept consent, or None."""
        return blobs.get(voice_id, f"{_CONSENT}{consent_id}.wav") if consent_id.isdigit() else None


def _numbers(blobs: BlobStore, voice_id: str, suffix: str) -> list[str]:
    names = (
        n.removeprefix(_CONSENT).removesuffix(suffix) for n in blobs.names(voice_id, _CONSENT) if n.endswith(suffix)
    )
    return [n for n in names if n.isdigit()]


def challenge_json(challenge: Challenge) -> dict[str, Any]:
    return {"challenge_id": challenge.id, "text": challenge.text, "expires_at_unix": int(challenge.expires_at)}
