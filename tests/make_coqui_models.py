"""Write tiny, randomly initialised coqui-tts models in their real on-disk formats:
`python tests/make_coqui_models.py OUT_DIR` writes OUT_DIR/openvoice_v2 and OUT_DIR/bark.

Each is built with coqui's own config and model classes, at a few layers and channels instead of the
released sizes, and saved as the released weights are laid out, so the engines load them through the
very code that loads the real ones. They speak noise: only rates, lengths, order and caching are
tested with them; the real weights' quality is not measured here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

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


if __name__ == "__main__":
    target = Path(sys.argv[1])
    print(openvoice(target))
