"""Which examples each rank trains on: data slots that make a run independent of the world size.

An optimizer step consumes ``data_slots = batch_size / micro_batch_size`` micro-batches. Slot ``j``
reads shard ``j`` of ``data_slots`` shards of the corpus (``PretrainingDataset(rank=j,
world_size=data_slots)``); rank ``r`` with ``a`` accumulation steps owns slots ``r, r + world,
r + 2 world, ...``. One process with 2 accumulation steps and two ranks with 1 therefore see the
same micro-batches and compute the same gradients, and a checkpoint stores each slot's
(epoch, position), so a resumed run reads exactly the examples it would have read.

With ``group`` > 1 (``data.group_by_length``) a slot reads ``group`` micro-batches at a time (a
pool), sorts them by length and serves micro-batches of similar length, in an order drawn from the
pool's index alone: every slot serves its short micro-batches at the same steps, so the ranks,
which wait for each other every step, pad alike. A checkpoint then stores where the pool started
and how many of its micro-batches were served; the pool is read again on resume.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Iterator

from torch.utils.data import IterableDataset

Example = dict[str, Any]
# (shard, num_shards) -> an IterableDataset with load_state_dict({"epoch", "position"}), as PretrainingDataset
DatasetFactory = Callable[[int, int], IterableDataset]


class SlotStream:
    """The examples of one data slot, in order, epoch after epoch (grouped by length: see the module)."""

    def __init__(self, make_dataset: DatasetFactory, slot: int, num_slots: int,
                 length: Callable[[Example], int] | None = None, group: int = 1):
        self.slot, self.num_slots = slot, num_slots
        self.dataset = make_dataset(slot, num_slots)
        self.length, self.group = length, group
        self.epoch, self.position = 0, 0  # where the next read starts
        self._iterator: Iterator[Example] | None = None
        # grouping: the current pool's micro-batches still to serve (a pool holds ``group``), where the
        # pool started, the index of the next pool, and how many to skip when the pool is read again
        # after a resume
        self._pool: list[list[Example]] = []
        self._pool_start = (0, 0)
        self._next_pool, self._skip = 0, 0

    def _open(self) -> Iterator[Example]:
        # The dataset is deterministic in (seed, epoch, position): this resumes exactly.
        self.dataset.load_state_dict({"epoch": self.epoch, "position": self.position})
        return iter(self.dataset)

    def _read(self, count: int) -> list[Example]:
        examples: list[Example] = []
        while len(examples) < count:
            if self._iterator is None:
                self._iterator = self._open()
            example = next(self._iterator, None)
            if example is None:
                if self.position == 0:
                    raise ValueError(
                        f"data slot {self.slot} of {self.num_slots} has no examples: the corpus split is too "
                        f"small for batch_size / micro_batch_size = {self.num_slots} shards")
                self.epoch, self.position, self._iterator = self.epoch + 1, 0, None
                continue
            self.position += 1
            examples.append(example)
        return examples

    def take(self, count: int) -> list[Example]:
        if self.group == 1:
            return self._read(count)
        if not self._pool:
            self._pool_start = (self.epoch, self.position)
            examples = self._read(count * self.group)
            lengths = [self.length(example) for example in examples]
            order = sorted(range(len(examples)), key=lambda i: (lengths[i], i))
            self._pool = [[examples[i] for i in order[j:j + count]] for j in range(0, len(order), count)]
            random.Random(self._next_pool).shuffle(self._pool)
            self._next_pool += 1
            self._skip, self._pool = 0, self._pool[self._skip:]
        return self._pool.pop(0)

    def state_dict(self) -> dict[str, int]:
        if self._pool:  # mid-pool: read the pool again from its start and skip what was served
            epoch, position = self._pool_start
            return {"epoch": epoch, "position": position, "pool": self._next_pool - 1, "served": self.group - len(self._pool)}
        return {"epoch": self.epoch, "position": self.position, "pool": self._next_pool, "served": 0}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position, self._iterator = int(state["epoch"]), int(state["position"]), None
        self._pool, self._next_pool, self._skip = [], int(state.get("pool", 0)), int(state.get("served", 0))


class RankData:
    """The data slots of one rank: ``next_micro_batch(a)`` gives accumulation step ``a``'s examples."""

    def __init__(self, make_dataset: DatasetFactory, rank: int, world_size: int, accumulation_steps: int, micro_batch_size: int,
                 length: Callable[[Example], int] | None = None, group: int = 1):
        self.rank, self.world_size, self.micro_batch_size = rank, world_size, micro_batch_size
        num_slots = world_size * accumulation_steps
        self.slots = {self.slot_of(a): SlotStream(make_dataset, self.slot_of(a), num_slots, length, group)
                      for a in range(accumulation_steps)}

    def slot_of(self, accumulation_index: int) -> int:
        return accumulation_index * self.world_size + self.rank

    def next_micro_batch(self, accumulation_index: int) -> list[Example]:
        return self.slots[self.slot_of(accumulation_index)].take(self.micro_batch_size)

    def state_dict(self) -> dict[int, dict[str, int]]:
        return {slot: stream.state_dict() for slot, stream in self.slots.items()}

    def load_state_dict(self, states: dict[int, dict[str, int]]) -> None:
        """``states`` may hold every rank's slots (as saved); this rank takes its own."""
        missing = [slot for slot in self.slots if slot not in states]
        if missing:
            raise ValueError(f"checkpoint has no data position for slot(s) {missing}: was batch_size / micro_batch_size changed?")
        for slot, stream in self.slots.items():
            stream.load_state_dict(states[slot])
