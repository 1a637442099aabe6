"""Decode each video once per process: an LRU of decoded videos bounded by bytes, with in-flight sharing.

The n rollouts of a prompt ask for the same video at the same moment from executor threads; the first
caller decodes and the others wait for its result instead of decoding again. Later requests (the
multimodal recompute, later epochs) hit the LRU. Keys are the file identity (real path, size, mtime)
plus every sampling parameter, so an edited file or a different budget never returns stale frames.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

Value = TypeVar("Value")


class DecodeCache(Generic[Value]):
    """A thread-safe LRU keyed by hashables, bounded by the total `size_of` its values."""

    def __init__(self, max_bytes: int, size_of: Callable[[Value], int]):
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._items: OrderedDict[Hashable, Value] = OrderedDict()
        self._in_flight: dict[Hashable, Future] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get_or_compute(self, key: Hashable, compute: Callable[[], Value]) -> Value:
        """Return the cached value for `key`, or compute it once (concurrent callers share the result)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            pending = self._in_flight.get(key)
            if pending is None:
                pending = Future()
                self._in_flight[key] = pending
                owner = True
                self.misses += 1
            else:
                owner = False
                self.hits += 1
        if not owner:
            return pending.result()
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                del self._in_flight[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            del self._in_flight[key]
            self._store(key, value)
        pending.set_result(value)
        return value

    def _store(self, key: Hashable, value: Value) -> None:
        size = self._size_of(value)
        if size > self.max_bytes:
            return  # larger than the whole cache: serve it, keep nothing
        self._items[key] = value
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self._bytes -= self._size_of(evicted)

    def clear(self) -> None:
        """Drop every cached value."""
        with self._lock:
            self._items.clear()
            self._bytes = 0
