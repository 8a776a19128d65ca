"""Audio in and out: decode any common upload, resample, and encode to every output format.

One table (`FORMATS`) says what each output format is; `Encoder` turns float chunks into bytes
incrementally, so the same code serves whole files and streams. Codecs come from FFmpeg via PyAV,
resampling from soxr.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
import soxr

from .errors import BadAudio, LimitExceeded, UnsupportedFormat

# Everything that listens (speaker encoder, Whisper, the voice detector, voice statistics) works at 16 kHz.
ANALYSIS_RATE = 16_000
# Uploaded references are kept at this rate: enough for every engine's output band, and for playback.
REFERENCE_RATE = 24_000


@dataclass(frozen=True)
class FormatInfo:
    """How one output format is made: FFmpeg container and codec, MIME type, rate constraints."""

    content_type: str
    container: str | None  # None: raw bytes we write ourselves (wav header, pcm)
    codec: str | None
    default_rate: int | None  # None: the engine's own rate
    rates: tuple[int, ...] = ()  # the codec's accepted rates, if it has a fixed set
    default_bitrate: int | None = None


FORMATS: dict[str, FormatInfo] = {
    "wav": FormatInfo("audio/wav", None, None, None),
    "pcm": FormatInfo("audio/pcm", None, None, 24_000),  # OpenAI: 24 kHz 16-bit little-endian mono
    "mp3": FormatInfo(
        "audio/mpeg", "mp3", "libmp3lame", None, (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000), 128_000
    ),
    "opus": FormatInfo("audio/ogg", "ogg", "libopus", 48_000, (8000, 12000, 16000, 24000, 48000), 64_000),
    "aac": FormatInfo(
        "audio/aac", "adts", "aac", None, (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000), 96_000
    ),
    "flac": FormatInfo("audio/flac", "flac", "flac", None),
    "ulaw": FormatInfo("audio/basic", "mulaw", "pcm_mulaw", 8000),
}


@dataclass(frozen=True)
class OutputFormat:
    """A requested encoding. `sample_rate`/`bitrate` of None mean the format's default."""

    name: str
    sample_rate: int | None = None
    bitrate: int | None = None

    def __post_init__(self) -> None:
        if self.name not in FORMATS:
            raise UnsupportedFormat(f"unknown audio format {self.name!r}; choose one of {sorted(FORMATS)}")
        info = FORMATS[self.name]
        if self.sample_rate is not None and info.rates and self.sample_rate not in info.rates:
            raise UnsupportedFormat(
                f"{self.name} cannot be encoded at {self.sample_rate} Hz; use one of {list(info.rates)}"
            )
        if self.sample_rate is not None and not 8000 <= self.sample_rate <= 48_000:
            raise UnsupportedFormat(f"sample rate {self.sample_rate} Hz is outside 8000-48000")

    @property
    def info(self) -> FormatInfo:
        return FORMATS[self.name]

    @property
    def content_type(self) -> str:
        return self.info.content_type

    def rate_for(self, source_rate: int) -> int:
        """The rate the bytes will have, given the engine's rate."""
        rate = self.sample_rate or self.info.default_rate or source_rate
        if self.info.rates and rate not in self.info.rates:
            rate = min(self.info.rates, key=lambda r: (r < rate, abs(r - rate)))
        return rate

    def cache_token(self) -> str:
        return f"{self.name}:{self.sample_rate or ''}:{self.bitrate or ''}"


_ELEVENLABS_FORMAT = re.compile(r"^(mp3|pcm|ulaw|opus|alaw)_(\d{4,5})(?:_(\d{2,3}))?$")


def parse_elevenlabs_format(value: str) -> OutputFormat:
    """`mp3_44100_128`, `pcm_16000`, `ulaw_8000`, `opus_48000_64` -> OutputFormat."""
    match = _ELEVENLABS_FORMAT.match(value)
    if not match or match.group(1) == "alaw":
        raise UnsupportedFormat(
            f"unknown output_format {value!r}; use e.g. mp3_44100_128, pcm_16000, pcm_22050, pcm_24000, "
            "pcm_44100, ulaw_8000, opus_48000_64"
        )
    name, rate, kbps = match.group(1), int(match.group(2)), match.group(3)
    return OutputFormat(name, rate, int(kbps) * 1000 if kbps else None)


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate or audio.size == 0:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio.astype(np.float32, copy=False), source_rate, target_rate, quality="HQ").astype(
        np.float32
    )


def to_int16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")


def wav_header(sample_rate: int, n_samples: int | None) -> bytes:
    """A 16-bit mono RIFF header; with n_samples None the sizes say "unknown" (0xFFFFFFFF) for streaming."""
    data_size = 0xFFFFFFFF if n_samples is None else n_samples * 2
    riff_size = 0xFFFFFFFF if n_samples is None else 36 + data_size
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_size)
    )


class _Sink(io.RawIOBase):
    """A write-only, non-seekable byte sink so FFmpeg muxers emit a stream we can hand out as it grows."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class Encoder:
    """Incremental encoder: feed float32 chunks at `source_rate`, get bytes of `fmt` back as they are ready."""

    def __init__(self, fmt: OutputFormat, source_rate: int) -> None:
        self.format = fmt
        self.source_rate = source_rate
        self.rate = fmt.rate_for(source_rate)
        self._started = False
        self._container: Any = None
        if fmt.info.container is not None:
            self._sink = _Sink()
            self._container = av.open(self._sink, mode="w", format=fmt.info.container)
            self._stream = self._container.add_stream(fmt.info.codec, rate=self.rate, layout="mono")
            bitrate = fmt.bitrate or fmt.info.default_bitrate
            if bitrate:
                self._stream.bit_rate = bitrate
            self._pts = 0

    def header(self) -> bytes:
        """Bytes that open a stream of unknown length (WAV needs its header first)."""
        if self.format.name == "wav":
            return wav_header(self.rate, None)
        return b""

    def encode(self, audio: np.ndarray) -> bytes:
        pcm = resample(audio, self.source_rate, self.rate)
        if self._container is None:
            return to_int16(pcm).tobytes()
        frame = av.AudioFrame.from_ndarray(to_int16(pcm).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self._pts
        self._pts += frame.samples
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        return self._sink.take()

    def finish(self) -> bytes:
        if self._container is None:
            return b""
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return self._sink.take()


def encode(audio: np.ndarray, source_rate: int, fmt: OutputFormat) -> bytes:
    """A whole clip as one file of `fmt` (WAV with exact sizes)."""
    encoder = Encoder(fmt, source_rate)
    body = encoder.encode(audio) + encoder.finish()
    if fmt.name == "wav":
        return wav_header(encoder.rate, len(body) // 2) + body
    return body


# Sample rates a real recording can have; a header claiming anything else is broken or hostile.
SOURCE_RATES = (4000, 384_000)


def _check_rate(rate: int) -> None:
    low, high = SOURCE_RATES
    if not low <= rate <= high:
        raise BadAudio(f"the audio's sample rate of {rate} Hz is outside {low}-{high} Hz")


def decode(data: bytes, *, target_rate: int, max_seconds: float) -> np.ndarray:
    """Any audio file FFmpeg reads -> float32 mono at `target_rate`.

    Hostile input is bounded: decoding stops (LimitExceeded) as soon as `max_seconds` of audio have
    come out, whatever the header claims, so a tiny file that expands to hours cannot exhaust memory.
    """
    if not data:
        raise BadAudio("the audio file is empty")
    limit = int(max_seconds * target_rate)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            streams = [s for s in container.streams if s.type == "audio"]
            if not streams:
                raise BadAudio("no audio stream found; upload wav, flac, mp3, ogg/opus, webm or m4a")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=target_rate)
            for frame in container.decode(audio=0):
                _check_rate(frame.sample_rate)  # before resampling: an absurd rate makes huge buffers
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    total += chunk.size
                    if total > limit:
                        raise LimitExceeded(
                            f"audio is longer than the {max_seconds:.0f} s limit", limit="max_upload_seconds"
                        )
                    chunks.append(chunk)
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except (BadAudio, LimitExceeded):
        raise
    except (av.error.FFmpegError, ValueError, OSError, MemoryError, UnicodeDecodeError) as e:
        raise BadAudio(f"could not decode the audio file: {type(e).__name__}") from e
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if audio.size == 0:
        raise BadAudio("the audio file holds no samples")
    if not np.isfinite(audio).all():
        raise BadAudio("the audio holds invalid (non-finite) samples")
    return audio
