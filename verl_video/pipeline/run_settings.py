"""One settings object for every command: training, `verl-video eval`, `warm-start` and `cache`.

`RunSettings` is resolved from exactly one source:
- the composed trainer config (training: hydra composes video_grpo.yaml, a profile, an experiment and the
  command line's overrides; `RunSettings.from_config`);
- a saved run: `run.json`, which training writes beside its checkpoints with the resolved config
  (`settings_from_run`; `eval` finds it from a `global_step_N` checkpoint by itself);
- the defaults YAML plus overrides: the same hydra composition as training, from `--set` overrides such
  as `experiment=tiny_tvg_cpu` or `data.video.max_frames=64` (`settings_from_defaults`).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verl_video.tasks.prompts import get_template
from verl_video.video.settings import BUDGET_FIELDS, SETTINGS_FIELDS, VideoDataSettings, settings_from_config

RECORD_NAME = "run.json"
CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
CONFIG_NAME = "video_grpo"
_CHECKPOINT = re.compile(r"^global_step_\d+$")
# How far above a checkpoint folder (global_step_N) the model may sit: global_step_N/actor/huggingface_merged.
_CHECKPOINT_DEPTH = 2


@dataclass(frozen=True)
class RunSettings:
    """What decides a run's inputs and scoring: video and prompt settings, seed, reward options, lengths."""

    video: VideoDataSettings
    # trainer.seed: data order, sampling, and (in eval) the generation seed.
    seed: int
    # reward.reward_kwargs (preset, parser, ...), plain; empty means the project's default preset.
    reward: dict[str, Any] = field(default_factory=dict)
    # data.max_response_length: what the model may write (eval's max_new_tokens).
    max_response_length: int | None = None
    train_files: tuple[str, ...] = ()
    val_files: tuple[str, ...] = ()
    # Where the settings came from, for messages.
    source: str = "config"
    # The `search:` block when the run's agent loop is the search loop (data.agent_loop), else None: a warm
    # start then trains on search traces.
    search: dict[str, Any] | None = None
    # The whole trainer config, plain and resolved: what `eval` builds the search loop with.
    config: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_config(cls, config: Any, source: str = "config") -> RunSettings:
        """From a trainer config: hydra's composed DictConfig or the resolved dict saved in run.json."""
        config = _plain(config)
        data = config.get("data") or {}
        return cls(
            video=settings_from_config(data),
            seed=int((config.get("trainer") or {}).get("seed", VideoDataSettings().seed)),
            reward=dict((config.get("reward") or {}).get("reward_kwargs") or {}),
            max_response_length=data.get("max_response_length"),
            train_files=_files(data.get("train_files")),
            val_files=_files(data.get("val_files")),
            source=source,
            # verl_adapter/search_prompt.py's SEARCH_AGENT_LOOP_NAME (this package may not import it).
            search=dict(config.get("search") or {}) if data.get("agent_loop") == "video_search" else None,
            config=config,
        )

    def values(self) -> dict[str, Any]:
        """Every setting a command's flag may change, by name (budget fields, decoder, template, seed, ...)."""
        section = self.video.as_section()
        return {
            **{name: section[name] for name in BUDGET_FIELDS},
            "decoder": self.video.decoder,
            "prompt_template": self.video.prompt_template,
            "seed": self.seed,
            "max_response_length": self.max_response_length,
        }

    def to_json(self) -> dict[str, Any]:
        """The resolved settings, plus the prompt template's text, for run.json."""
        template = get_template(self.video.prompt_template)
        return {
            "video": self.video.as_section(),
            "prompt_template": {"name": template.name, "user": template.user, "system": template.system,
                                "think": template.think, "answer_style": template.answer_style},
            "seed": self.seed,
            "reward": self.reward,
            "max_response_length": self.max_response_length,
        }


def prompt_template_for(
    entry: str | None, record: str | None, run: str, forced: str | None = None
) -> str:
    """The one rule for a row's prompt template (docs/settings.md), first set wins.

    forced: a command's flag for every dataset (`verl-video eval --template/--think`); entry: the data_config
    entry's `prompt_template`; record: the record's own (a format that implies one, e.g. Temporal-R1's);
    run: `data.video.prompt_template` of the composed config (an experiment or `--set` changes it there).
    """
    return forced or entry or record or run


def _plain(config: Any) -> dict[str, Any]:
    if isinstance(config, Mapping) and not hasattr(config, "_metadata"):
        return dict(config)
    from omegaconf import OmegaConf

    return OmegaConf.to_container(config, resolve=True)


def _files(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, (list, tuple)) else (str(value),)


def read_run_record(path: str | Path) -> dict[str, Any]:
    """The run record at `path`: a run.json, or a folder holding it (itself or its `checkpoints/`)."""
    path = Path(path)
    candidates = [path] if path.is_file() else [path / RECORD_NAME, path / "checkpoints" / RECORD_NAME]
    for candidate in candidates:
        if candidate.is_file():
            record = json.loads(candidate.read_text())
            if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
                raise ValueError(f"{candidate}: not a training run record (no resolved 'config')")
            record["_path"] = str(candidate)
            return record
    raise FileNotFoundError(f"{path}: no {RECORD_NAME} (a training run writes it into trainer.default_local_dir)")


def find_run_record(model: str | Path) -> Path | None:
    """run.json of the run a checkpoint belongs to (`.../global_step_N[/actor[/merged]]`), or None."""
    path = Path(model)
    if not path.exists():
        return None  # a hub id
    path = path.resolve()
    for folder in [path, *path.parents][: _CHECKPOINT_DEPTH + 1]:
        if _CHECKPOINT.match(folder.name):
            candidate = folder.parent / RECORD_NAME  # trainer.default_local_dir
            return candidate if candidate.is_file() else None
    return None


def settings_from_run(path: str | Path) -> RunSettings:
    """The settings a run trained with, from its run.json (or its folder)."""
    record = read_run_record(path)
    return RunSettings.from_config(record["config"], source=f"run {record['_path']}")


def expand_override(override: str) -> str:
    """`max_frames=64` (a data.video key) as `data.video.max_frames=64`; other overrides unchanged."""
    key, sep, value = override.partition("=")
    if sep and key.strip() in (*BUDGET_FIELDS, *SETTINGS_FIELDS):
        return f"data.video.{key.strip()}={value}"
    return override


def settings_from_defaults(
    overrides: Sequence[str] = (), config_dir: str | Path | None = None, config_name: str = CONFIG_NAME
) -> RunSettings:
    """The trainer YAML composed as training composes it (hydra), with `overrides` such as `experiment=NAME`."""
    from hydra import compose, initialize_config_dir

    folder = Path(config_dir or CONFIG_DIR).resolve()
    overrides = [expand_override(o) for o in overrides]
    with initialize_config_dir(config_dir=str(folder), version_base=None):
        config = compose(config_name=config_name, overrides=overrides)
    described = " ".join(overrides)
    return RunSettings.from_config(config, source=f"{folder / config_name}.yaml" + (f" + {described}" if described else ""))


def add_settings_arguments(parser: argparse.ArgumentParser, finds_run: bool = False) -> None:
    """`--run`, `--set` and `--config-dir`: where a command's settings come from."""
    g = parser.add_argument_group(
        "run settings (one source: a training run's run.json, else video_grpo.yaml composed with --set)"
    )
    found = " (default: the run of a global_step_N --model, when found; 'none': the YAML)" if finds_run else ""
    g.add_argument("--run", help=f"training run folder or its run.json: use the settings it trained with{found}")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override of the trainer config as training takes it, e.g. experiment=tiny_tvg_cpu or "
                        "data.video.max_frames=64 (data.video keys may drop the prefix: max_frames=64)")
    g.add_argument("--config-dir", help="folder of the trainer YAMLs (default: the package's config/)")


def settings_from_args(args: argparse.Namespace, model: str | None = None) -> RunSettings:
    """The settings `--run` / `--set` / `--config-dir` select; a checkpoint `model` brings its run's."""
    run = getattr(args, "run", None)
    composes = bool(args.set or args.config_dir)
    if run is None and model is not None and not composes:
        found = find_run_record(model)
        run = str(found) if found else None
    if run and run != "none":
        if composes:
            raise ValueError("--run takes the run's settings as they were; --set / --config-dir compose the YAML "
                             "instead (pass one source, or --run none)")
        return settings_from_run(run)
    return settings_from_defaults(args.set, args.config_dir)
