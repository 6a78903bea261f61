"""Which examples each rank trains on: data slots that make a run independent of the world size.

An optimizer step consumes ``data_slots = batch_size / micro_batch_size`` micro-batches. Slot ``j``
reads shard ``j`` of ``data_slots`` shards of the corpus (``PretrainingDataset(rank=j,
world_size=data_slots)``); rank ``r`` with ``a`` accumulation steps owns slots ``r, r + world,
r + 2 world, ...``. One process with 2 accumulation steps and two ranks with 1 therefore see the
same micro-batches and compute the same gradients, and a checkpoint stores each slot's
(epoch, position), so a resumed run reads exactly the examples it would have read.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from torch.utils.data import IterableDataset

Example = dict[str, Any]
# (shard, num_shards) -> an IterableDataset with load_state_dict({"epoch", "position"}), as PretrainingDataset
DatasetFactory = Callable[[int, int], IterableDataset]


class SlotStream:
    """The examples of one data slot, in order, epoch after epoch."""

    def __init__(self, make_dataset: DatasetFactory, slot: int, num_slots: int):
        self.slot, self.num_slots = slot, num_slots
        self.dataset = make_dataset(slot, num_slots)
        self.epoch, self.position = 0, 0
        self._iterator: Iterator[Example] | None = None

    def _open(self) -> Iterator[Example]:
        # The dataset is deterministic in (seed, epoch, position): this resumes exactly.
        self.dataset.load_state_dict({"epoch": self.epoch, "position": self.position})
        return iter(self.dataset)

    def take(self, count: int) -> list[Example]:
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

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position, self._iterator = int(state["epoch"]), int(state["position"]), None


class RankData:
    """The data slots of one rank: ``next_micro_batch(a)`` gives accumulation step ``a``'s examples."""

    def __init__(self, make_dataset: DatasetFactory, rank: int, world_size: int, accumulation_steps: int, micro_batch_size: int):
        self.rank, self.world_size, self.micro_batch_size = rank, world_size, micro_batch_size
        num_slots = world_size * accumulation_steps
        self.slots = {self.slot_of(a): SlotStream(make_dataset, self.slot_of(a), num_slots) for a in range(accumulation_steps)}

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
