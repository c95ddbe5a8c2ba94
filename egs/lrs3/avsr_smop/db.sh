# Corpus and pretrained-model locations for LRS3; each can be overridden from the environment.
# Empty means "not available here"; stage 0 (data) and stage 1 (models) say what is missing and where it goes.

# LRS3 (https://mmai.io/datasets/lip_reading/): <LRS3>/{pretrain,trainval,test}/<speaker>/<id>.{mp4,txt}
LRS3=${LRS3:-}
# Facial landmarks per video: <LRS3_LANDMARKS>/<subset>/<speaker>/<id>.npy, (T, 68, 2), NaN = no face.
# Convert auto_avsr's LRS3 landmark pickles once with: python -m smop.bin.convert_landmarks
# Empty: stage 0 detects them with dlib into data/local/landmarks (tools/install.sh --extra landmarks).
LRS3_LANDMARKS=${LRS3_LANDMARKS:-}
# The reference face of the mouth crops: the official 20words_mean_face.npy, (68, 2) landmarks in a
# 256x256 canvas, which the released AV-HuBERT and Llama-AVSR models' crops were aligned to. It ships
# with auto_avsr (github.com/mpc001/auto_avsr, preparation/detectors/retinaface/; Apache-2.0) and is
# linked from AV-HuBERT's preparation; it comes from mpc001/Lipreading_using_Temporal_Convolutional_Networks.
MEAN_FACE=${MEAN_FACE:-}
# Validation ids held out of trainval (AV-HuBERT's lrs3-valid.id: <speaker>/<id> per line).
# Empty: 1,200 trainval videos are held out at random (seeded).
LRS3_VALID_ID=${LRS3_VALID_ID:-}
# Babble noise, 16 kHz mono wav: noise augmentation in training and the noisy test sets.
BABBLE_NOISE=${BABBLE_NOISE:-}

# Pretrained models: a local directory (save_pretrained layout) or a hub id already in the HF cache.
WHISPER=${WHISPER:-openai/whisper-medium.en}
LLM=${LLM:-meta-llama/Llama-3.2-1B}
# The official AV-HuBERT checkpoint (fairseq .pt), e.g. .../avhubert/model/lrs3_vox/clean-pretrain/large_vox_iter5.pt
AVHUBERT=${AVHUBERT:-}
