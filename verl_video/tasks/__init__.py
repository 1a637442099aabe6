"""Tasks: how a record of each kind becomes a prompt, a reward ground truth and evaluation metrics.

Built-in: temporal grounding, multiple-choice QA, grounded QA, tracking (one module each). Add your own
with one file and `modules` (docs/tasks.md shows a complete example).
"""

from . import grounded_qa, grounding, mcq, tracking  # noqa: F401  (their @register_task fills TASKS)
from .base import PROMPT_STYLES, Task, field_value
from .registry import TASKS, get_task, load_task_modules, register_task

__all__ = ["PROMPT_STYLES", "TASKS", "Task", "field_value", "get_task", "load_task_modules", "register_task"]
