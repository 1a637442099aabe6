"""A user's own files, named under a data_config's `modules:`, reach every command that reads the data_config;
data that yields no row stops at start-up with every reason counted; a key a task would ignore is refused.

The user's folder (conftest.py) is built from the docs' own code blocks, outside the repository, and the
commands run from it as subprocesses, as a user runs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from extension_project import NUM_COUNTING, REPO_ROOT, cli, docs_block

from verl_video.pipeline.items import build_row, load_items
from verl_video.rewards import RewardScorer
from verl_video.video.settings import VideoDataSettings


def _config(project: Path, name: str, **changes) -> str:
    """A copy of the user's data.yaml with top-level `changes` (None removes a key), written as `name`."""
    config = {**yaml.safe_load((project / "data.yaml").read_text()), **changes}
    (project / name).write_text(yaml.safe_dump({k: v for k, v in config.items() if v is not None}, sort_keys=False))
    return name


def test_validate_loads_the_task_file_named_in_modules(user_project):
    done = cli(user_project, "validate", "data.yaml")
    assert f"counting: {NUM_COUNTING} records, 8 videos, 0 problems" in done.stdout
    assert done.stdout.strip().endswith("OK")


def test_without_modules_the_unknown_task_says_where_to_name_its_file(user_project):
    done = cli(user_project, "validate", _config(user_project, "no_modules.yaml", modules=None), check=False)
    assert done.returncode == 1
    assert f"{NUM_COUNTING}  task: unknown task 'counting'" in done.stdout
    assert "under `modules:` in the data_config" in done.stdout


def test_a_module_that_fails_to_import_is_one_error_naming_the_config_and_the_file(user_project):
    (user_project / "broken.py").write_text("import re\nanswer = undefined_name\n")
    (user_project / "broken.yaml").write_text(
        "modules:\n  - my_tasks/counting.py\n  - broken.py\ndatasets:\n"
        "  - {name: counting, json_path: counting.jsonl, data_folder: videos, task: counting}\n")
    done = cli(user_project, "validate", "broken.yaml", check=False)
    assert done.returncode == 2
    broken = user_project / "broken.py"
    # One error line, whatever warnings a loaded machine adds around it.
    errors = [line for line in done.stderr.splitlines() if line.startswith("verl-video validate:")]
    assert errors == [f"verl-video validate: broken.yaml:3: modules[1]: cannot import module {broken}: NameError: "
                      f"name 'undefined_name' is not defined (at {broken}:2)"], done.stderr
    assert "Traceback" not in done.stderr


def test_a_template_the_task_would_ignore_is_refused_and_a_style_template_is_honoured(user_project):
    entry = "  - name: counting\n    json_path: counting.jsonl\n    data_folder: videos\n    prompt_template: {}\n"
    for template in ("think_json", "answer_only"):
        (user_project / f"{template}.yaml").write_text("modules: [my_tasks/counting.py]\ndatasets:\n" + entry.format(template))
    done = cli(user_project, "validate", "think_json.yaml", check=False)
    assert done.returncode == 2
    assert "think_json.yaml:6: datasets[0].prompt_template: 'think_json' would be ignored by task 'counting'" in done.stderr
    [think_row, plain_row] = [
        build_row(load_items([str(user_project / path)], VideoDataSettings())[0], 0, 10.0)
        for path in ("data.yaml", "answer_only.yaml")
    ]
    assert "Reason inside <think>" in think_row["prompt"][-1]["content"]
    assert "Reason" not in plain_row["prompt"][-1]["content"] and plain_row["extra_info"]["think"] is False


def test_data_without_a_usable_row_stops_the_driver_with_each_file_and_reason(user_project, tiny_model_dir):
    grounding = {"name": "grounding", "json_path": "grounding.jsonl", "data_folder": "no_such_folder"}
    config = yaml.safe_load((user_project / "data.yaml").read_text())
    name = _config(user_project, "unusable.yaml", modules=None, datasets=[config["datasets"][0], grounding])
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-m", "verl_video.main", "experiment=tiny_tvg_cpu", f"actor_rollout_ref.model.path={tiny_model_dir}",
         f"data.train_files={name}", f"data.val_files={name}"],
        cwd=user_project, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    error = done.stderr[done.stderr.index("verl-video: configuration error"):]
    assert f"data.train_files: no usable rows in {user_project / name}:" in error
    assert f"counting ({user_project / 'counting.jsonl'}): {NUM_COUNTING} records, none usable" in error
    assert f"{NUM_COUNTING}  task: unknown task 'counting'" in error
    assert "8  video: video not found" in error
    assert "num_samples" not in done.stdout + done.stderr and "ray" not in error.lower()


def test_the_docs_reward_file_is_selected_by_name_with_the_docs_keys(user_project):
    kwargs = {}
    for line in docs_block("rewards.md", "Then select it by name:", "bash").splitlines():
        key, _, value = line.strip().strip("'").removeprefix("+reward.reward_kwargs.").partition("=")
        if key in ("modules", "components"):
            kwargs[key] = yaml.safe_load(value.replace("/abs/path/my_reward.py", str(user_project / "my_reward.py")))
    scorer = RewardScorer.from_kwargs(kwargs)
    truth = {"timestamps": [[2.0, 4.0]], "duration": 10.0}
    short = scorer("g", "<think>x</think> <answer>2 to 4</answer>", truth, {})
    long = scorer("g", "<think>" + "x" * 700 + "</think> <answer>2 to 4</answer>", truth, {})
    assert short["early_stop"] == 1.0 and long["early_stop"] < 1.0 and short["score"] > long["score"]


def test_a_compute_score_function_is_one_key(user_project):
    [line] = [line for line in docs_block("rewards.md", "### 2. A `compute_score` function", "bash").splitlines()
              if ".py:compute_score" in line]
    key, _, value = line.split("#")[0].strip().partition("=")
    assert key == "+reward.reward_kwargs.preset"
    copied = user_project / "compute_score.py"
    copied.write_text((REPO_ROOT / "examples" / "reward_function" / "compute_score.py").read_text())
    scorer = RewardScorer.from_kwargs({"preset": value.replace("/abs/path/compute_score.py", str(copied))})
    truth = {"timestamps": [[2.0, 4.0]], "duration": 10.0}
    assert scorer("g", "<answer>2 to 4</answer>", truth, {})["score"] == 1.1
    assert scorer("g", "<answer>6 to 8</answer>", truth, {})["score"] == 0.1


def test_verls_two_key_custom_reward_function_as_documented(user_project):
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn

    block = docs_block("rewards.md", "### 3. verl's custom reward function", "bash")
    keys = dict(line.split("#")[0].strip().lstrip("+").split("=", 1) for line in block.splitlines()
                if line.strip().startswith(("reward.custom", "+reward.custom")))
    path = keys["reward.custom_reward_function.path"].replace("/abs/path/", f"{REPO_ROOT}/")
    config = OmegaConf.create({"reward": {"custom_reward_function": {
        "path": path, "name": keys["reward.custom_reward_function.name"],
        "reward_kwargs": {"preset": keys["reward.custom_reward_function.reward_kwargs.preset"]}}}})
    score = get_custom_reward_fn(config)
    right = score("g", '<think>x</think> <answer>{"start_time": 2, "end_time": 4}</answer>',
                  {"timestamps": [[2.0, 4.0]], "duration": 10.0}, {"answer_style": "json"})
    assert right["score"] == 1.0 and right["parse_ok"] == 1.0


# Beside the docs' format (docs/data.md), the same file registers a prompt template and a selection strategy.
EXTRAS = '''
from verl_video.selection.strategies import register_strategy
from verl_video.tasks.prompts import PromptTemplate, register_template

register_template(PromptTemplate(name="terse", user="<video>\\nWhen: {query}? <answer>s to e</answer>", think=False))


@register_strategy("everything")
def everything(stats, **params):
    return list(stats)
'''


def test_one_file_registers_a_format_a_template_and_a_strategy(user_project):
    (user_project / "extras.py").write_text(docs_block("data.md", "A format of your own", "python") + EXTRAS)
    (user_project / "moments.jsonl").write_text(
        '{"uid": 1, "clip": "clip0.mp4", "text": "a shape appears", "span": [1.0, 2.0]}\n')
    entry = {"name": "moments", "json_path": "moments.jsonl", "data_folder": "videos", "format": "moments",
             "prompt_template": "terse"}
    name = _config(user_project, "moments.yaml", modules=["extras.py"], datasets=[entry])
    assert cli(user_project, "validate", name, "--no-decode").stdout.strip().endswith("OK")
    [item] = load_items([str(user_project / name)], VideoDataSettings())
    assert build_row(item, 0, 8.0)["prompt"][-1]["content"] == "<video>\nWhen: a shape appears? <answer>s to e</answer>"
    from verl_video.selection.strategies import get_strategy

    assert get_strategy("everything") is not None
