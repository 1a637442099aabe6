"""Task registry: tasks by name, filled by the built-in task modules and by user files named in `modules`.

    from verl_video.tasks import Task, register_task

    @register_task
    class Counting(Task):
        name = "counting"
        ...

A name is registered once; a user file replaces a built-in only with `register_task(override=True)`.
User files load exactly as reward files do (`load_modules`, rewards/registry.py), so one file may hold a
task and the rewards it needs; a data_config lists them under `modules:` (annotations/data_config.py).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable

from verl_video.rewards.registry import load_modules
from verl_video.rewards.scorer import register_default_preset, register_row_metrics

from .base import Task

TASKS: dict[str, Task] = {}


def register_task(cls: type[Task] | None = None, *, override: bool = False) -> Callable | type[Task]:
    """Class decorator: register one instance of a `Task` subclass under its `name`."""

    def decorator(task_cls: type[Task]) -> type[Task]:
        name = getattr(task_cls, "name", "")
        if not name:
            raise ValueError(f"task class {task_cls.__qualname__} sets no `name`")
        existing = TASKS.get(name)
        # A file imported again (each Ray worker loads user files itself, maybe under another module name)
        # defines the same class in the same file: that is the same task, not a clash.
        same = existing is not None and _origin(type(existing)) == _origin(task_cls)
        if existing is not None and not override and not same:
            raise ValueError(
                f"task {name!r} is already registered by {type(existing).__module__}.{type(existing).__qualname__}; "
                f"{task_cls.__module__}.{task_cls.__qualname__} registers the same name: rename one, or pass "
                "override=True to replace it on purpose"
            )
        TASKS[name] = task = task_cls()
        register_row_metrics(name, task_cls.metric_keys, task.metrics)
        register_default_preset(name, task_cls.default_preset)
        return task_cls

    return decorator(cls) if cls is not None else decorator


def _origin(cls: type) -> tuple[str, str]:
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None) or cls.__module__
    return os.path.realpath(path), cls.__qualname__


def get_task(name: str) -> Task:
    """The registered task `name`; ValueError listing the known names otherwise."""
    if name not in TASKS:
        raise ValueError(
            f"unknown task {name!r}; registered: {', '.join(sorted(TASKS))} (a task of your own: list the file that "
            "registers it under `modules:` in the data_config)"
        )
    return TASKS[name]


def load_task_modules(modules: Iterable[str] | str | None) -> None:
    """Import user task files (`path/to/task.py`) or modules so their `@register_task` runs (rewards' loader)."""
    load_modules(modules, named_in="modules")
