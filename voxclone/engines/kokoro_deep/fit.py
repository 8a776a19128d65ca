"""The adaptation loop: AdaSpeech-style conditional-norm adaptation of Kokoro's decoder to one speaker.

What moves: the biases of the decoder's 58 AdaIN `fc` layers (the per-channel scale and shift every
decoder block applies to its normalised activations) and the 128 timbre numbers of the style, 37,524
numbers in all. Everything else stays as shipped, so the voice keeps the model's intelligibility;
adapting the `fc` weights too (4.8 M numbers) over-fitted in RESEARCH.md §12 (WER 0.10).

The decoder is fed the reference's own timeline (align.py): its phonemes at the speaker's durations,
the speaker's F0, and the predictor's energy along those durations. Its output is compared with the
recording on random 2 s crops by a multi-resolution log-STFT and log-mel L1 below the recording's
bandwidth, plus a small L2 pull to the starting values. The last part of each utterance is never
trained on: its loss picks the best step (early stopping) and is the fit's held-out figure.

Checkpoints are written atomically every few steps; a fit started again on the same checkpoint path
continues where it stopped, its time budget counting the time already spent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .align import Utterance
from .model import HALF, SAMPLE_RATE, SAMPLES_PER_FRAME, KokoroTorch

HELD_OUT = 0.15  # the last 15 % of every utterance is never trained on
_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))
_N_MELS = 80


@dataclass(frozen=True)
class FitOptions:
    """How long and how hard to fit. The defaults are the measured recipe (research log in the closing note)."""

    time_budget_s: float = 600.0
    max_steps: int = 400
    crop_frames: int = 80  # 2 s
    lr_bias: float = 0.01
    lr_timbre: float = 0.005
    # Also fit the predictor's AdaIN biases to the speaker's aligned F0 and durations. Off: it gained 0.02
    # GE2E for one speaker, but for another it broke unseen sentences (WER 0.46 with it, 0.00 without).
    prosody: bool = False
    lr_prosody: float = 0.01
    pull: float = 1e-4  # L2 pull of every adapted number toward its start, per number
    validate_every: int = 10
    patience: int = 8  # validations without a new best before stopping
    checkpoint_every: int = 10
    seed: int = 0


@dataclass
class FitProgress:
    step: int
    max_steps: int
    fraction: float
    held_out_loss: float
    best_loss: float
    eta_s: float


@dataclass
class FitResult:
    """The adapted voice as deltas from the starting one (the artefact), and how the fit went."""

    timbre_delta: np.ndarray  # (128,) added to every style row's timbre half
    bias_deltas: dict[str, np.ndarray]  # graph initializer name -> delta of that AdaIN fc bias
    held_out_start: float
    held_out_best: float
    steps: int
    best_step: int
    seconds: float
    curve: list[tuple[int, float]] = field(default_factory=list)  # (step, held-out loss)


def adapted_biases(model: KokoroTorch) -> dict[str, torch.nn.Parameter]:
    """The decoder's AdaIN fc biases, by their name in the shipped graph."""
    return {
        f"decoder.decoder.{name}.bias": module.bias
        for name, module in model.decoder.named_modules()
        if name.endswith(".fc") and isinstance(module, torch.nn.Linear)
    }


def prosody_biases(model: KokoroTorch) -> dict[str, torch.nn.Parameter]:
    """The predictor's AdaIN fc biases behind durations and F0 (not energy), by their name in the shipped graph."""
    return {
        f"encoder.predictor.{name}.bias": module.bias
        for name, module in model.predictor.named_modules()
        if name.endswith(".fc") and name.startswith(("text_encoder.", "F0."))
    }


class SpectralLoss:
    """Multi-resolution log-magnitude L1 plus log-mel L1, counting only bins below a cutoff."""

    def __init__(self, cutoff_hz: float, device: torch.device) -> None:
        from ...embedding import mel_filterbank

        self.cutoff = cutoff_hz
        self.device = device
        self.windows = {n: torch.hann_window(n, device=device) for n, _ in _RESOLUTIONS}
        fb = mel_filterbank(SAMPLE_RATE, 1024, _N_MELS)  # Slaney mels over 0-12 kHz
        freqs = np.fft.rfftfreq(1024, 1 / SAMPLE_RATE)
        keep = (fb * (freqs[None, :] <= cutoff_hz)).sum(axis=1) >= 0.999 * fb.sum(axis=1)  # mels wholly inside
        self.mel = torch.from_numpy(fb[keep]).to(device)

    def _mag(self, x: torch.Tensor, n: int, hop: int) -> torch.Tensor:
        spec = torch.stft(x, n, hop, n, window=self.windows[n], return_complex=True).abs()
        bins = int(self.cutoff / (SAMPLE_RATE / n)) + 1
        return spec[:bins]

    def __call__(self, y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        n = min(len(y), len(ref))
        y, ref = y[:n], ref[:n]
        loss = y.new_zeros(())
        for size, hop in _RESOLUTIONS:
            a, b = self._mag(y, size, hop), self._mag(ref, size, hop)
            loss = loss + (torch.log(a + 1e-5) - torch.log(b + 1e-5)).abs().mean()
            if size == 1024:
                ma = self.mel @ F.pad(a, (0, 0, 0, 513 - a.shape[0]))
                mb = self.mel @ F.pad(b, (0, 0, 0, 513 - b.shape[0]))
                loss = loss + (torch.log(ma + 1e-5) - torch.log(mb + 1e-5)).abs().mean()
        return loss / (len(_RESOLUTIONS) + 1)


@dataclass
class _Prepared:
    """One utterance's fixed decoder inputs."""

    asr: torch.Tensor  # (1, 512, n)
    f0: torch.Tensor  # (1, 2n)
    energy: torch.Tensor  # (1, 2n)
    audio: torch.Tensor  # (n * 600,)
    row: int  # style row used (phoneme count - 1)
    train_frames: int  # crops start and end before this frame
    d_en: torch.Tensor  # (1, 512, T) ALBERT features for the predictor
    frames: torch.Tensor  # (T,) the speaker's frames per token


def _prepare(model: KokoroTorch, utt: Utterance, table: torch.Tensor, device: torch.device) -> _Prepared:
    row = min(len(utt.ids), len(table)) - 1
    style = table[row]
    with torch.no_grad():
        feats = model.text_features(utt.ids, style)
        _, energy, asr = model.prosody(feats, torch.from_numpy(utt.frames), style)
        d_en = model.bert_features(utt.ids)
    n = utt.n_frames
    return _Prepared(
        asr=asr.to(device),
        f0=torch.from_numpy(utt.f0).reshape(1, -1).to(device),
        energy=energy.to(device),
        audio=torch.from_numpy(utt.audio).to(device),
        row=row,
        train_frames=max(1, round(n * (1 - HELD_OUT))),
        d_en=d_en.to(device),
        frames=torch.from_numpy(utt.frames).to(device),
    )


class DeepFit:
    """One speaker's fit; `run` may be called again on a new instance to resume from the checkpoint."""

    def __init__(
        self,
        model: KokoroTorch,
        utterances: list[Utterance],
        style_table: np.ndarray,
        options: FitOptions | None = None,
        checkpoint: Path | None = None,
    ) -> None:
        self.options = options or FitOptions()
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device)
        self.checkpoint = checkpoint
        self.table = torch.from_numpy(np.asarray(style_table, np.float32)).to(self.device)
        self.data = [_prepare(self.model, u, self.table.cpu(), self.device) for u in utterances]
        self.loss = SpectralLoss(min(u.cutoff_hz for u in utterances), self.device)
        decoder = adapted_biases(self.model)
        prosody = prosody_biases(self.model) if self.options.prosody else {}
        self.biases = {**decoder, **prosody}
        self.start = {k: v.detach().clone() for k, v in self.biases.items()}
        self.timbre = torch.zeros(HALF, device=self.device, requires_grad=True)
        for p in self.biases.values():
            p.requires_grad_(True)
        o = self.options
        self.optimizer = torch.optim.Adam(
            [
                {"params": list(decoder.values()), "lr": o.lr_bias},
                {"params": [self.timbre], "lr": o.lr_timbre},
                {"params": list(prosody.values()), "lr": o.lr_prosody},
            ]
        )
        self.rng = np.random.default_rng(o.seed)
        self.held_out = [
            (i, d.train_frames, d.asr.shape[-1]) for i, d in enumerate(self.data) if d.asr.shape[-1] > d.train_frames
        ]

    # -- one crop through the decoder
    def _loss_on(self, i: int, a: int, b: int) -> torch.Tensor:
        d = self.data[i]
        timbre = (self.table[d.row, :HALF] + self.timbre).reshape(1, HALF)
        y = self.model.decode(d.asr[:, :, a:b], d.f0[:, 2 * a : 2 * b], d.energy[:, 2 * a : 2 * b], timbre)
        return self.loss(y, d.audio[a * SAMPLES_PER_FRAME : b * SAMPLES_PER_FRAME])

    def _prosody_loss(self, i: int) -> torch.Tensor:
        """How far the predictor's durations and F0 (along the speaker's durations) are from the speaker's, in log units."""
        d = self.data[i]
        style = self.table[d.row]
        encoded, durations = self.model.durations(d.d_en, style)
        aln = self.model.alignment(d.frames)
        f0, _ = self.model.predictor.F0Ntrain(encoded.transpose(-1, -2) @ aln, style.reshape(1, -1)[:, HALF:])
        voiced = d.f0 > 0
        f0_loss = (torch.log(f0.clamp(min=30.0)) - torch.log(d.f0.clamp(min=30.0)))[voiced].abs().mean()
        duration_loss = (torch.log1p(durations) - torch.log1p(d.frames.float())).abs().mean()
        return f0_loss + duration_loss

    def _pull(self) -> torch.Tensor:
        total = sum(((p - self.start[k]) ** 2).sum() for k, p in self.biases.items())
        return self.options.pull * (total + (self.timbre**2).sum())

    def _crop(self) -> tuple[int, int, int]:
        weights = np.array([d.train_frames for d in self.data], np.float64)
        i = int(self.rng.choice(len(self.data), p=weights / weights.sum()))
        span = min(self.options.crop_frames, self.data[i].train_frames)
        a = int(self.rng.integers(0, self.data[i].train_frames - span + 1))
        return i, a, a + span

    def held_out_loss(self) -> float:
        """Loss over the held-out tail of every utterance (the whole of the last utterance if none has one)."""
        spans = self.held_out or [(len(self.data) - 1, 0, self.data[-1].asr.shape[-1])]
        with torch.no_grad():
            losses = [float(self._loss_on(i, a, b)) for i, a, b in spans]
        return float(np.mean(losses))

    # -- checkpoints
    def _state(self, step: int, elapsed: float, best: dict, curve: list) -> dict:
        return {
            "step": step,
            "elapsed": elapsed,
            "biases": {k: v.detach().cpu() for k, v in self.biases.items()},
            "timbre": self.timbre.detach().cpu(),
            "optimizer": self.optimizer.state_dict(),
            "best": best,
            "curve": curve,
            "rng": self.rng.bit_generator.state,
        }

    def _save(self, state: dict) -> None:
        if self.checkpoint is None:
            return
        tmp = self.checkpoint.with_name(f".{self.checkpoint.name}.{os.getpid()}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint)  # atomic: a kill mid-write leaves the previous checkpoint whole

    def _restore(self) -> dict | None:
        if self.checkpoint is None or not self.checkpoint.exists():
            return None
        state = torch.load(self.checkpoint, map_location=self.device, weights_only=False)
        with torch.no_grad():
            for k, v in state["biases"].items():
                self.biases[k].copy_(v)
            self.timbre.copy_(state["timbre"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        return state

    def _snapshot(self) -> dict:
        return {
            "biases": {k: v.detach().cpu().clone() for k, v in self.biases.items()},
            "timbre": self.timbre.detach().cpu().clone(),
        }

    def run(self, progress: Callable[[FitProgress], None] | None = None) -> FitResult:
        o = self.options
        state = self._restore()
        if state is None:
            start_loss = self.held_out_loss()
            best = {"loss": start_loss, "step": 0, **self._snapshot()}
            step, elapsed, curve = 0, 0.0, [(0, start_loss)]
        else:
            best, step, elapsed, curve = state["best"], state["step"], state["elapsed"], state["curve"]
        started, since_best = time.monotonic() - elapsed, 0
        if len(curve) > 1:
            since_best = sum(1 for s, _ in curve if s > best["step"])
        while step < o.max_steps and time.monotonic() - started < o.time_budget_s and since_best < o.patience:
            self.optimizer.zero_grad(set_to_none=True)
            i, a, b = self._crop()
            loss = self._loss_on(i, a, b) + self._pull()
            if o.prosody:
                loss = loss + self._prosody_loss(i)
            loss.backward()
            self.optimizer.step()
            step += 1
            if step % o.validate_every == 0:
                held = self.held_out_loss()
                curve.append((step, held))
                if held < best["loss"]:
                    best, since_best = {"loss": held, "step": step, **self._snapshot()}, 0
                else:
                    since_best += 1
            elapsed = time.monotonic() - started
            if progress is not None:
                per_step = elapsed / max(step, 1)
                eta = min((o.max_steps - step) * per_step, max(0.0, o.time_budget_s - elapsed))
                fraction = min(1.0, max(step / o.max_steps, elapsed / o.time_budget_s))
                progress(FitProgress(step, o.max_steps, fraction, curve[-1][1], best["loss"], eta))
            if step % o.checkpoint_every == 0:
                self._save(self._state(step, elapsed, best, curve))
        if curve[-1][0] != step:  # stopped between validations (the time budget): the last steps count too
            held = self.held_out_loss()
            curve.append((step, held))
            if held < best["loss"]:
                best = {"loss": held, "step": step, **self._snapshot()}
        elapsed = time.monotonic() - started
        self._save(self._state(step, elapsed, best, curve))
        deltas = {k: (best["biases"][k] - self.start[k].cpu()).numpy().astype(np.float32) for k in self.biases}
        return FitResult(
            timbre_delta=best["timbre"].numpy().astype(np.float32),
            bias_deltas=deltas,
            held_out_start=curve[0][1],
            held_out_best=best["loss"],
            steps=step,
            best_step=best["step"],
            seconds=elapsed,
            curve=curve,
        )

    def restore_start(self) -> None:
        """Put the model's biases back as shipped (the model object is shared with later fits)."""
        with torch.no_grad():
            for k, p in self.biases.items():
                p.copy_(self.start[k])
                p.requires_grad_(False)
