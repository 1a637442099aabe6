"""What the overlong-prompt filter dropped, per dataset: a run's logs say how much data the token budget cost."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from verl_video.pipeline.items import DatasetItem

logger = logging.getLogger("verl_video.data")


class PromptLengthReport:
    """Per dataset (data_config entry name): records seen, records dropped, and the longest dropped prompt."""

    def __init__(self, items: Iterable[DatasetItem], budget: int, budget_key: str = "data.max_prompt_length"):
        # Totals count every record handed to the filter, those whose video header cannot be read included.
        self.totals: Counter[str] = Counter(item.dataset for item in items)
        self.dropped: Counter[str] = Counter()
        self.longest: dict[str, int] = {}
        self.budget = budget
        self.budget_key = budget_key

    def keeps(self, item: DatasetItem, length: int) -> bool:
        """Whether a prompt of `length` tokens fits the budget; a dropped one is counted against its dataset."""
        if length <= self.budget:
            return True
        self.dropped[item.dataset] += 1
        self.longest[item.dataset] = max(length, self.longest.get(item.dataset, 0))
        return False

    def lines(self) -> list[tuple[int, str]]:
        """(log level, line) per dataset, in the order datasets first appeared; a warning where records went."""
        return [
            (logging.WARNING, f"verl-video data: {name}: {self.dropped[name]} of {total} records dropped by the "
             f"prompt-length filter (longest {self.longest[name]} tokens > {self.budget_key}={self.budget})")
            if self.dropped[name] else
            (logging.INFO, f"verl-video data: {name}: 0 of {total} records dropped by the prompt-length filter "
             f"({self.budget_key}={self.budget})")
            for name, total in self.totals.items()
        ]  # fmt: skip

    def log(self) -> None:
        """Log one line per dataset."""
        for level, line in self.lines():
            logger.log(level, line)
