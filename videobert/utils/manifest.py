"""An append-only job manifest: one JSON line per finished item, the last line for a key wins.

Appending (rather than rewriting one JSON document) keeps each update O(1) for corpora of
millions of items; a line cut short by a kill is ignored on reading, so at most the item in
flight is lost.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class Manifest:
    """Status of each item of a long job, e.g. ``{"key": "vid1", "status": "done", ...}``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a killed job
                if isinstance(record, dict) and "key" in record:
                    self.records[record["key"]] = record

    def status(self, key: str) -> str | None:
        record = self.records.get(key)
        return None if record is None else record.get("status")

    def is_done(self, key: str) -> bool:
        return self.status(key) == "done"

    def record(self, key: str, status: str, **fields: Any) -> None:
        """Append ``key``'s new status and flush it to disk before returning."""
        record = {"key": key, "status": status, **fields}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.records[key] = record

    def keys_with_status(self, status: str) -> list[str]:
        return [k for k, r in self.records.items() if r.get("status") == status]
