"""Deep clone: fit Kokoro's own parameters to a speaker by gradient descent (optional extra `voxclone[deep]`).

The instant clone (voxclone.cloning) picks a style; this tier then adapts the decoder's AdaIN biases
and the style's timbre half to the reference recording itself, on a CPU in minutes. Everything here
needs torch and is imported only by the fitting process (`python -m voxclone.engines.kokoro_deep JOB_DIR`);
serving the result needs numpy and onnxruntime only (voxclone.engines.kokoro_adapted).
"""
