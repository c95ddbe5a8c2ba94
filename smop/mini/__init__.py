"""The embedded mini audio-visual corpus (GRID-style sentences, espeak-ng voices, a synthetic
talking face) and the brief pretraining of its small Whisper, AV-HuBERT and Llama models."""
