# Where the corpus and the pretrained models live; each can be overridden from the environment.
# The mini corpus is generated here by stage 0, data preparation (nothing is downloaded).
MINI_AV=${MINI_AV:-downloads/mini_av}
# The small pretrained models (Whisper, AV-HuBERT, Llama) that stage 1 trains on the prepared data.
PRETRAINED=${PRETRAINED:-pretrained}
