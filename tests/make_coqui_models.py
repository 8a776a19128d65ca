"""Write tiny, randomly initialised coqui-tts models in their real on-disk formats:
`python tests/make_coqui_models.py OUT_DIR` writes OUT_DIR/openvoice_v2 and OUT_DIR/bark (and xtts_v2).

Each is built with coqui's own config and model classes, at a few layers and channels instead of the
released sizes, and saved as the released weights are laid out, so the engines load them through the
very code that loads the real ones. They speak noise: only rates, lengths, order and caching are
tested with them; the real weights' quality is not measured here.
"""

from __future__ import annotations

import json
import string
import sys
from pathlib import Path

import numpy as np
import torch

SEED = 1234


def openvoice(out: Path) -> Path:
    """OpenVoice's converter layout: config.json (OpenVoice's own schema) and checkpoint.pth {"model": ...}."""
    from TTS.vc.configs.openvoice_config import OpenVoiceConfig
    from TTS.vc.models.openvoice import OpenVoice

    torch.manual_seed(SEED)
    sizes = {
        "zero_g": True,
        "inter_channels": 16,
        "hidden_channels": 16,
        "filter_channels": 32,
        "n_heads": 2,
        "n_layers": 1,
        "kernel_size": 3,
        "p_dropout": 0.0,
        "resblock": "2",
        "resblock_kernel_sizes": [3],
        "resblock_dilation_sizes": [[1, 3]],
        "upsample_rates": [8, 8, 4],
        "upsample_initial_channel": 32,
        "upsample_kernel_sizes": [16, 16, 8],
        "n_layers_q": 1,
        "use_spectral_norm": False,
        "gin_channels": 16,
    }
    data = {"sampling_rate": 22050, "filter_length": 1024, "hop_length": 256, "win_length": 1024}
    config = OpenVoiceConfig()
    for key, value in sizes.items():
        setattr(config.model_args, key, value)
    model = OpenVoice(config)
    folder = out / "openvoice_v2"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"_version_": "v2", "data": data, "model": sizes}, indent=1))
    torch.save({"model": model.state_dict()}, folder / "checkpoint.pth")
    return folder


def bark_prompt(rng: np.random.Generator, frames: int = 60) -> dict[str, np.ndarray]:
    """A Bark history prompt in the original project's `.npz` format (random tokens: a shape, not a voice)."""
    return {
        "semantic_prompt": rng.integers(0, 10_000, size=frames * 2 // 3, dtype=np.int64),
        "coarse_prompt": rng.integers(0, 1024, size=(2, frames), dtype=np.int64),
        "fine_prompt": rng.integers(0, 1024, size=(8, frames), dtype=np.int64),
    }


def bark(out: Path) -> Path:
    """coqui's Bark layout: text_2.pt, coarse_2.pt, fine_2.pt (nanoGPT checkpoints: model_args, model,
    best_val_loss), a BERT WordPiece tokenizer and an EnCodec codec in transformers' own format, and
    stock speaker prompts as Bark's speaker_embeddings/*.npy."""
    from transformers import EncodecConfig, EncodecFeatureExtractor, EncodecModel, HubertConfig, HubertModel
    from TTS.tts.layers.bark.hubert.tokenizer import HubertTokenizer
    from TTS.tts.layers.bark.model import GPT, GPTConfig
    from TTS.tts.layers.bark.model_fine import FineGPT, FineGPTConfig

    torch.manual_seed(SEED)
    folder = out / "bark"
    folder.mkdir(parents=True, exist_ok=True)
    small = {"block_size": 1024, "n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.0, "bias": True}
    # Bark's vocabularies (text tokens + offsets, codebooks + pads) at their real sizes; only depth and width shrink.
    for name, model_class, config_class, extra in (
        ("text_2.pt", GPT, GPTConfig, {"input_vocab_size": 129_600, "output_vocab_size": 10_048}),
        ("coarse_2.pt", GPT, GPTConfig, {"input_vocab_size": 12_096, "output_vocab_size": 12_096}),
        (
            "fine_2.pt",
            FineGPT,
            FineGPTConfig,
            {"input_vocab_size": 1_056, "output_vocab_size": 1_056, "n_codes_total": 8, "n_codes_given": 1},
        ),
    ):
        args = {**small, **extra}
        model = model_class(config_class(**args))
        torch.save({"model_args": args, "model": model.state_dict(), "best_val_loss": torch.tensor(0.0)}, folder / name)
    tokenizer = folder / "tokenizer"
    tokenizer.mkdir(exist_ok=True)
    pieces = string.ascii_letters + string.digits + string.punctuation
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *pieces, *(f"##{c}" for c in pieces)]
    (tokenizer / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (tokenizer / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": False, "tokenizer_class": "BertTokenizer"})
    )
    codec = EncodecConfig(
        target_bandwidths=[1.5, 3.0, 6.0, 12.0, 24.0],
        sampling_rate=24_000,
        audio_channels=1,
        normalize=False,
        hidden_size=16,
        num_filters=4,
        num_residual_layers=1,
        upsampling_ratios=[8, 5, 4, 2],
        codebook_size=1024,
        num_lstm_layers=1,
        codebook_dim=16,
    )
    EncodecModel(codec).save_pretrained(folder / "encodec")
    EncodecFeatureExtractor(feature_size=1, sampling_rate=24_000, padding_value=0.0).save_pretrained(folder / "encodec")
    # Cloning: HuBERT in transformers' format (9 layers: coqui reads the 9th hidden state) and the quantiser
    # in its own zip-with-.info checkpoint format.
    hubert = HubertConfig(
        hidden_size=32,
        num_hidden_layers=9,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    HubertModel(hubert).save_pretrained(folder / "hubert")
    HubertTokenizer(hidden_size=16, input_size=32, output_size=10_000, version=0).save(
        str(folder / "hubert_tokenizer.pth")
    )
    rng = np.random.default_rng(SEED)
    (folder / "speakers").mkdir(exist_ok=True)
    for speaker in ("en_speaker_0", "en_speaker_1"):  # two of Bark's ten stock speakers
        for key, array in bark_prompt(rng).items():
            np.save(folder / "speakers" / f"{speaker}_{key}.npy", array)
    return folder


def xtts(out: Path) -> Path:
    """XTTS-v2's layout: config.json (coqui's XttsConfig), model.pth ({"model": state dict}) and vocab.json
    (a `tokenizers` BPE file with XTTS's special tokens). GPT, HiFi-GAN decoder and speaker encoder are
    coqui's own; the GPT is one narrow layer and may emit at most 40 audio codes (under 2 s)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    folder = out / "xtts_v2"
    folder.mkdir(parents=True, exist_ok=True)
    special = ["[STOP]", "[UNK]", "[SPACE]", "[START]", "[en]"]
    vocab = {token: i for i, token in enumerate([*special, *string.ascii_lowercase, *string.digits, *".,!?'-"])}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tokenizer.add_special_tokens(special)
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(folder / "vocab.json"))
    config = XttsConfig()
    args = config.model_args
    args.gpt_layers, args.gpt_n_model_channels, args.gpt_n_heads, args.decoder_input_dim = 1, 32, 2, 32
    args.gpt_max_audio_tokens = 40
    config.languages = ["en"]
    torch.manual_seed(SEED)
    model = Xtts(config)
    model.tokenizer = VoiceBpeTokenizer(vocab_file=str(folder / "vocab.json"))
    model.init_models()
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    config.save_json(str(folder / "config.json"))
    return folder


if __name__ == "__main__":
    target = Path(sys.argv[1])
    print(openvoice(target))
    print(bark(target))
    print(xtts(target))
