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


class NoUsableData(ValueError):
    """No record of a run's data files can become a row; the message names each file and counts the reasons."""


class DropTally:
    """Per dataset: its annotation file, how many records it read, and why each record that got no row was left out."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, int]] = {}
        self.reasons: dict[str, Counter[str]] = {}

    def read(self, dataset: str, path: str, records: int) -> None:
        """Note that `dataset` read `records` records from `path`."""
        self.files[dataset] = (path, records)
        self.reasons.setdefault(dataset, Counter())

    def drop(self, dataset: str, reason: str) -> None:
        """Count one record of `dataset` left out for `reason`."""
        self.reasons.setdefault(dataset, Counter())[reason] += 1

    def error(self, data_files: list[str]) -> NoUsableData:
        """The start-up error for data files that yield no row: one line per dataset and reason."""
        lines = [f"no usable rows in {', '.join(map(str, data_files))}:"]
        for dataset, (path, records) in self.files.items():
            lines.append(f"  {dataset} ({path}): {records} records, none usable")
            empty = "the sampling strategy selected none" if records else "the annotation file holds no records"
            reasons = self.reasons.get(dataset) or Counter({empty: max(records, 1)})
            lines += [f"    {count:6d}  {reason}" for reason, count in reasons.most_common()]
        lines.append("run `verl-video validate` on the data_config for every record's problem")
        return NoUsableData("\n".join(lines))
