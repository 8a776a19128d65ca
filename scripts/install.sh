#!/usr/bin/env bash
# Install voxclone into ./.venv (Python 3.11). Usage: scripts/install.sh [EXTRAS], e.g. "piper,test" or "piper,coqui".
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-piper}"
python=$(command -v python3.11 || command -v python3)
"$python" -c 'import sys; assert sys.version_info[:2] == (3, 11), "voxclone needs Python 3.11"'
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade "pip==25.3"
has() { [[ ",$extras," == *",$1,"* ]]; }
torch_needed=false
if has test || has deep || has coqui || has bark || has openvoice || has xtts; then torch_needed=true; fi
if $torch_needed && ! .venv/bin/python -c 'import torch' 2>/dev/null; then
  # The GE2E judge, the deep clone and the coqui engines need torch. This pin takes the CPU build on this disk; asked
  # for by another package first, pip would fetch a CUDA build of several GB. (On a GPU machine,
  # install your CUDA build of torch >= 2.11 before running this.)
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
fi
.venv/bin/python -m pip install --quiet -e ".[$extras]"
if has deep || has test; then
  # The deep clone (and its tests) need kokoro's PyTorch model code, without kokoro's declared deps
  # (misaki pulls a CUDA torch and fetches spaCy data): see pyproject's `deep` extra.
  .venv/bin/python -m pip install --quiet -e ".[deep]"
  .venv/bin/python -m pip install --quiet --no-deps "kokoro==0.9.4"
fi
if has test; then
  # The speaker-similarity judge (resemblyzer, GE2E). resemblyzer goes in without its declared deps
  # (`typing`, `webrtcvad`): see pyproject.
  .venv/bin/python -m pip install --quiet -e ".[judge]"
  .venv/bin/python -m pip install --quiet --no-deps "resemblyzer==0.1.4"
fi
if has coqui || has bark || has openvoice || has xtts; then
  # PyPI's torchaudio links CUDA torch; beside a CPU torch its compiled extension cannot load, and
  # `import torchaudio` fails. coqui uses only its Python parts, which run without it: remove it.
  .venv/bin/python - <<'PY'
import importlib.util, pathlib, torch
if torch.version.cuda is None:
    lib = pathlib.Path(importlib.util.find_spec("torchaudio").origin).parent / "lib"
    for extension in lib.glob("*.so"):
        extension.unlink()
PY
fi
if $torch_needed; then
  # torch pulls setuptools >= 77, which has no pkg_resources; pyworld imports it. Put back the one
  # the venv was made with (torch runs fine with it; only its install-time metadata asks for more).
  .venv/bin/python -m pip install --quiet "setuptools==65.5.0"
fi
