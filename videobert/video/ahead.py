"""Overlap a sequential producer with the work on its items: the producer keeps running on the
calling thread while a pool works on what it has already produced."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def mapped_ahead(fn: Callable[[T], R], items: Iterable[T], ahead: int, thread_name: str) -> Iterator[R]:
    """``fn(item)`` for every item, in order, computed on one worker thread (so ``fn`` sees the items
    in order, as the frame converter needs) while up to ``ahead`` more items are produced."""
    pending: deque = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name) as pool:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
