"""Bad inputs met at training time: counted by reason, each (video, reason) logged once per process."""

from __future__ import annotations

import logging
import threading
from collections import Counter

logger = logging.getLogger("verl_video.data")


class IssueLog:
    """Counts problems by reason and warns once for each distinct (subject, reason)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def report(self, reason: str, subject: str, detail: str, outcome: str = "the sample is skipped") -> None:
        """Count one occurrence of `reason` for `subject` (a file or record); log it, and `outcome`, the first time."""
        with self._lock:
            self.counts[reason] += 1
            first = (subject, reason) not in self._seen
            self._seen.add((subject, reason))
        if first:
            logger.warning("verl-video data: %s: %s (%s); %s, the run goes on", reason, subject, detail, outcome)

    def metrics(self, prefix: str = "data/") -> dict[str, int]:
        """Counts as flat metric names, e.g. {'data/missing_video': 3}."""
        with self._lock:
            return {f"{prefix}{reason}": count for reason, count in self.counts.items()}


# One log per process: the DataLoader workers and the agent-loop workers each keep their own.
issue_log = IssueLog()
