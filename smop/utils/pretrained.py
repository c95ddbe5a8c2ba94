"""Where pretrained models come from: a local directory, or a hub id already in the HF cache.

transformers reports a missing local directory as a malformed repo id ("Repo id must be in the
form ...") or as a failed connection; these checks say what is wrong and how to fix it first.
"""
import re
from pathlib import Path
from typing import Optional

# [<owner>/]<name>, as the hub spells repository ids (a few old ones have no owner: gpt2)
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(?:/[\w.-]+)?")


class PretrainedNotFound(FileNotFoundError):
    pass


def resolve_pretrained_dir(name_or_path: str, key: str) -> str:
    """The local directory of ``name_or_path`` (a ``save_pretrained`` directory, or a hub id whose
    snapshot is in the HF cache). ``key`` names the config key that gave it, for the message."""
    path = Path(str(name_or_path)).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise PretrainedNotFound(f"{key}: {path} has no config.json (not a save_pretrained directory)")
        return str(path)
    if path.exists():
        raise PretrainedNotFound(f"{key}: {path} is a file; give the model's directory (save_pretrained layout)")
    if not HUB_ID.fullmatch(str(name_or_path)):
        raise PretrainedNotFound(f"{key}: directory {path.absolute()} does not exist")
    snapshot = cached_snapshot(str(name_or_path))
    if snapshot is not None:
        return snapshot
    raise PretrainedNotFound(
        f"{key}: {name_or_path!r} is neither a directory ({path.absolute()} does not exist) nor a model "
        f"in the Hugging Face cache. Point {key} at the model's local directory, or fetch the hub model "
        f"once on a machine with internet access (hf download {name_or_path}) and copy the cache "
        f"(~/.cache/huggingface/hub, or $HF_HOME/hub) here; nothing is downloaded at run time."
    )


def cached_snapshot(repo_id: str) -> Optional[str]:
    """The cached snapshot directory of a hub model, or None (never downloads)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except (LocalEntryNotFoundError, HFValidationError, FileNotFoundError):
        return None
