"""Where models come from: a local directory, or a hub id already in the HF cache (never downloaded).

transformers reports a missing local directory as a malformed repo id ("Repo id must be in the
form ...") or as a failed connection; these checks say what is wrong and how to fix it first.
"""

import json
import re
from pathlib import Path
from typing import Callable, Optional

# [<owner>/]<name>, as the hub spells repository ids (a few old ones have no owner: gpt2)
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(?:/[\w.-]+)?")
# The files of a model directory in which transformers looks for ``auto_map`` (custom Python classes
# shipped with the model, which it offers to import and run).
CODE_MAPS = ("config.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json")
# Every from_pretrained passes this: smop never imports code that comes with a model.
NO_REMOTE_CODE = {"local_files_only": True, "trust_remote_code": False}


class PretrainedError(FileNotFoundError, ValueError):
    """A pretrained part that cannot be found or used (a FileNotFoundError where a path is missing,
    a ValueError where a setting is wrong: callers catch it as either)."""


def locate_dir(name_or_path: str, marker: str, fail: Callable[[str, Path], Exception]) -> Path:
    """The local folder of ``name_or_path``: a folder holding the file ``marker``, or a hub id whose
    snapshot in the local Hugging Face cache holds it (nothing is downloaded). Otherwise raises
    ``fail(reason, path)``, reason being "unmarked" (a folder without ``marker``), "file" (a file,
    not a folder), "missing" (no such folder, and not a hub id) or "uncached" (a hub id that is not
    in the cache); the caller words the message for what it looks for."""
    path = Path(str(name_or_path)).expanduser()
    if path.is_dir():
        if not (path / marker).is_file():
            raise fail("unmarked", path)
        return path
    if path.exists():
        raise fail("file", path)
    if not HUB_ID.fullmatch(str(name_or_path)):
        raise fail("missing", path)
    snapshot = cached_snapshot(str(name_or_path))
    if snapshot is None:
        raise fail("uncached", path)
    if not (Path(snapshot) / marker).is_file():
        raise fail("unmarked", Path(snapshot))
    return Path(snapshot)


def resolve_pretrained_dir(name_or_path: str, key: str) -> str:
    """The local directory of ``name_or_path`` (a ``save_pretrained`` directory, or a hub id whose
    snapshot is in the HF cache). ``key`` names the config key that gave it, for the message."""

    def fail(reason: str, path: Path) -> PretrainedError:
        if reason == "unmarked":
            return PretrainedError(f"{key}: {path} has no config.json (not a save_pretrained directory)")
        if reason == "file":
            return PretrainedError(f"{key}: {path} is a file; give the model's directory (save_pretrained layout)")
        if reason == "missing":
            return PretrainedError(f"{key}: directory {path.absolute()} does not exist")
        return PretrainedError(
            f"{key}: {name_or_path!r} is neither a directory ({path.absolute()} does not exist) nor a model "
            f"in the Hugging Face cache. Point {key} at the model's local directory, or fetch the hub model "
            f"once on a machine with internet access (hf download {name_or_path}) and copy the cache "
            f"(~/.cache/huggingface/hub, or $HF_HOME/hub) here; nothing is downloaded at run time."
        )

    folder = locate_dir(name_or_path, "config.json", fail)
    refuse_custom_code(folder, key)
    return str(folder)


def refuse_custom_code(folder: Path, key: str) -> None:
    """Refuse a model directory that ships its own Python classes (``auto_map``): transformers
    would ask whether to run them ("Do you wish to run the custom code? [y/N]"), and a ``y`` from
    a pipe runs whatever the folder holds. smop builds only the architectures transformers has."""
    for name in CODE_MAPS:
        path = Path(folder) / name
        if not path.is_file():
            continue
        try:
            declared = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise PretrainedError(f"{key}: {path}: not readable JSON ({e})") from None
        if isinstance(declared, dict) and "auto_map" in declared:
            raise PretrainedError(
                f"{key}: {path} declares custom code (auto_map), which smop never runs; "
                "use a model of an architecture transformers has, without auto_map"
            )


def cached_snapshot(repo_id: str) -> Optional[str]:
    """The cached snapshot directory of a hub model, or None (never downloads)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except (LocalEntryNotFoundError, HFValidationError, FileNotFoundError):
        return None
