# Where the corpus and the pretrained models live; each can be overridden from the environment.
# The mini corpus is generated here by stage 0 (nothing is downloaded).
MINI_AV=${MINI_AV:-downloads/mini_av}
# The small pretrained models (Whisper, AV-HuBERT, Llama) that stage 0 trains on the mini corpus.
PRETRAINED=${PRETRAINED:-pretrained}
