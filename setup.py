"""smop: Sparse Mixture of Projectors for LLM-based audio-visual speech recognition, on ESPnet."""

import re
from pathlib import Path

from setuptools import find_packages, setup

# The version is written once, in smop/__init__.py (read as text: smop's dependencies are not installed yet).
VERSION = re.search(r'^__version__ = "([^"]+)"$', (Path(__file__).parent / "smop" / "__init__.py").read_text(), re.M)[1]

# Pins that install together on Python 3.10-3.12 (pip check clean). espnet 202511 supports them all
# (its later releases need 3.12+); its abs_task imports torchaudio, whose 2.11 release needs torch
# 2.11; espnet pins setuptools<74. On 3.10 the newest transformers is 5.20 and numpy 2.2.
install_requires = [
    "espnet==202511",
    "torch==2.11.0",
    "torchaudio==2.11.0",
    "transformers==5.24.0; python_version >= '3.11'",
    "transformers==5.20.2; python_version < '3.11'",
    "peft==0.21.2",
    "numpy>=2.4,<2.5; python_version >= '3.11'",
    "numpy>=2.2,<2.3; python_version < '3.11'",
    "sentencepiece==0.2.0",
    "safetensors>=0.4",
    "huggingface_hub>=1.0",  # packed models: hub ids resolved in the local cache (never downloaded)
    "kaldiio>=2.18.0",
    "humanfriendly>=10.0",
    "jiwer>=3.0,<5",
    "soundfile>=0.12",
    "PyYAML>=6.0",
    "tqdm>=4.60",
    "matplotlib>=3.8",
    "opencv-python-headless>=4.10,<5",  # mouth-ROI alignment (similarity warp) and face drawing
    "tensorboard>=2.15",  # ESPnet trainer default: --use_tensorboard true
    "setuptools<74",
]

setup(
    name="smop",
    version=VERSION,
    description="Llama-SMoP recipes: sparse mixture of projectors for LLM-based AVSR on ESPnet",
    license="Apache-2.0",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["smop", "smop.*"]),
    install_requires=install_requires,
    extras_require={
        # scikit-image ships the real face photo (data.astronaut) the landmark tests film.
        "test": ["pytest>=8", "pytest-timeout>=2.3", "scikit-image>=0.24,<0.27", "ruff==0.17.6"],
        # Face landmarks from raw video (smop.bin.detect_landmarks): dlib's detectors and its 68-point
        # model (non-commercial research use); face-recognition-models ships the model files.
        "landmarks": ["dlib-bin==20.0.1.post1", "face-recognition-models==0.3.0"],
        # The frozen LLM in 4 or 8 bits (decoder_conf.quantization, QLoRA); 0.50 runs NF4 and
        # LLM.int8 on CPUs as well as GPUs.
        "quant": ["bitsandbytes>=0.50,<0.51"],
        # silero-vad's voice activity rule for cutting long recordings (smop-transcribe --vad silero);
        # its model ships inside the package (MIT), never downloaded. Needs only torch and packaging.
        "vad": ["silero-vad>=6.2,<6.3"],
        # The web demo (smop-demo) and its browser tests. gradio 6.31 needs pillow < 13; without the
        # lower bound pip falls back to gradio 3.18 where pillow 13 is held. playwright drives the
        # system chromium (Debian's package, which install.sh --extra demo installs): no browser download.
        "demo": ["gradio>=6.31,<7", "pillow<13", "playwright==1.65.*"],
    },
    entry_points={"console_scripts": ["smop-transcribe=smop.bin.transcribe:main", "smop-demo=smop.bin.demo:main"]},
)
