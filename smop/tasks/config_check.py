"""Checks of a training config before any model is loaded.

ESPnet applies YAML values as argparse defaults, which argparse does not validate: a misspelt
component (``projector: smopp``) or an unknown ``*_conf`` key would surface minutes later, deep in
``build_model``, as a bare KeyError or TypeError. Here each problem is named with the config file,
the key, the valid choices or keys, and the closest match. The checks run where a config enters
(training, packing a model's config for loading, ``--print_config``), not in ``build_model``.
"""

import argparse
import difflib
import inspect
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Sequence, Tuple

from espnet2.train.class_choices import ClassChoices

from smop.utils.component import AbsComponent
from smop.utils.pretrained import resolve_pretrained_dir


class ConfigError(ValueError):
    pass


def constructor_params(cls) -> Dict[str, inspect.Parameter]:
    """Keyword parameters of ``cls.__init__`` (the config schema of a component)."""
    params = inspect.signature(cls.__init__).parameters
    return {n: p for n, p in params.items() if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def required_keys(cls, supplied: Tuple[str, ...]) -> List[str]:
    """The constructor arguments of ``cls`` that a config must give: no default, not supplied by the task."""
    return [key for key, p in constructor_params(cls).items() if p.default is p.empty and key not in supplied]


def _closest(word: str, options: Iterable[str]) -> str:
    match = difflib.get_close_matches(str(word), list(options), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def check_choice(name: str, value, choices: Sequence[str]) -> List[str]:
    if value is None or str(value).lower() not in choices:
        return [f"{name}: {value!r} is not one of {', '.join(choices)}{_closest(value, choices)}"]
    return []


def _pretrained_paths(cls, name: str, conf: dict) -> List[str]:
    """Problems with the pretrained weights ``cls.PRETRAINED_ARGS`` names in ``conf``."""
    problems = []
    for arg, kind in cls.PRETRAINED_ARGS.items():
        key, value = f"{name}_conf.{arg}", conf.get(arg)
        if value is None:
            continue  # reported as a required key
        hint = f" ({cls.PRETRAINED_SOURCE})" if cls.PRETRAINED_SOURCE else ""
        if kind == "dir":
            try:
                resolve_pretrained_dir(value, key)
            except FileNotFoundError as e:
                problems.append(f"{e}{hint}")
        elif not Path(value).is_file():
            problems.append(f"{key}: {Path(value).absolute()} does not exist{hint}")
    return problems


def check_component(
    choices: ClassChoices, value: str, conf: dict, supplied: Tuple[str, ...], complete: bool = True
) -> List[str]:
    """Problems with ``<name>: value`` and its ``<name>_conf``, or []. ``complete``: also the keys
    left unset, the pretrained paths and the component's own ``check_conf`` (names that must
    match); else only the names (a template to print may leave values to fill in)."""
    name = choices.name
    problems = check_choice(name, value, choices.choices())
    if problems:
        return problems
    cls = choices.get_class(value)
    params = constructor_params(cls)
    conf = conf or {}
    accepted = sorted(set(params) - set(supplied))
    for key in conf:
        if key in supplied:
            problems.append(f"{name}_conf.{key}: set by the task (from the neighbouring components), not by the config")
        elif key not in params:
            problems.append(
                f"{name}_conf.{key}: not an option of {name} {value!r} (options: {', '.join(accepted)})"
                f"{_closest(key, accepted)}"
            )
    if not complete:
        return problems
    problems += [
        f"{name}_conf.{key}: required by {name} {value!r}, not set"
        for key in required_keys(cls, supplied)
        if conf.get(key) is None
    ]
    if problems or not issubclass(cls, AbsComponent):
        return problems
    # Every argument as the constructor will see it: the defaults a config leaves out included.
    bound = inspect.signature(cls.__init__).bind_partial(None, **conf)
    bound.apply_defaults()
    given = {k: v for k, v in bound.arguments.items() if k in accepted}
    problems = _pretrained_paths(cls, name, given)
    if not problems:
        try:
            cls.check_conf(f"{name}_conf", **given)
        except (ValueError, FileNotFoundError) as e:
            problems.append(str(e))
    return problems


def check_config(
    args: argparse.Namespace,
    class_choices_list: Sequence[ClassChoices],
    modalities: Dict[str, tuple],
    supplied: Dict[str, Tuple[str, ...]],
    used: Callable[[str, Tuple[str, ...]], bool],
    complete: bool = True,
    more_checks: Callable[[argparse.Namespace], List[str]] = lambda args: [],
) -> None:
    """Raise ConfigError listing every problem of the components ``args`` selects.

    ``supplied`` maps a component to the constructor arguments the task passes itself;
    ``used(name, modality_names)`` says whether a component is built for the modality;
    ``complete``: see :func:`check_component`; ``more_checks(args)``: the task's checks across
    components, run when each component is right."""
    problems = check_choice("modality", args.modality, sorted(modalities))
    if not problems:
        for choices in class_choices_list:
            if used(choices.name, modalities[args.modality]):
                problems += check_component(
                    choices,
                    getattr(args, choices.name),
                    getattr(args, f"{choices.name}_conf"),
                    supplied.get(choices.name, ()),
                    complete,
                )
    if not problems and complete:
        problems += more_checks(args)
    if getattr(args, "use_adapter", False):
        problems.append(
            "use_adapter: ESPnet's adapters (loralib) are not used by smop; the LLM's LoRA is set by "
            "decoder_conf.lora_r, lora_alpha, lora_dropout and lora_target_modules"
        )
    if problems:
        source = f"{args.config}: " if getattr(args, "config", None) else ""
        raise ConfigError(f"{source}{len(problems)} problem(s) in the configuration:\n  " + "\n  ".join(problems))
