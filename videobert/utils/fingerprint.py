"""Fingerprints: what made a stage's outputs, kept beside them, so a rerun never mixes two ways of
making them.

A fingerprint is a flat JSON mapping of everything that decides a stage's outputs: its settings
(sizes, fps, seeds, fractions) and digests of its inputs (the S3D weights file, the tree, the
tokenizer, the upstream stage's fingerprint). Outputs that do not depend on a setting (batch
sizes, worker counts, progress bars) leave it out, so changing those still resumes.

``claim_output(path, stage, fingerprint)`` is called before a stage writes anything:

- no fingerprint file: it is written, and the stage starts (or resumes outputs it cannot judge);
- the same fingerprint: the stage resumes;
- another one: ``StaleOutputError`` names each setting that changed (old -> new) and how to start
  over; with ``overwrite=True`` the old outputs are deleted first (the old fingerprint last, so a
  run killed while deleting is still refused, never resumed on half-deleted outputs).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Collection

from videobert.utils.io import write_json_atomic

FINGERPRINT_FILE = "fingerprint.json"
Fingerprint = dict[str, Any]


class StaleOutputError(ValueError):
    """The output directory holds work made with other settings or inputs."""


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def digest_of(value: Any) -> str:
    """Hex SHA-256 of a JSON-serialisable value (keys sorted), e.g. a fingerprint or a file list."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def tensors_digest(tensors: dict[str, Any]) -> str:
    """Hex SHA-256 of named torch tensors (names, dtypes, shapes and values), in name order."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(tensors.items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())  # raw bytes: bf16 has no numpy dtype
    return digest.hexdigest()


def state_dict_digest(module: Any) -> str:
    """Hex SHA-256 of a torch module's state dict."""
    return tensors_digest(module.state_dict())


def file_digest(path: str | os.PathLike) -> str:
    """A digest of what a file holds: for ``.safetensors`` its tensors and metadata (the same
    tensors saved twice can differ in bytes: the header's key order is not fixed), else its bytes."""
    if not str(path).endswith(".safetensors"):
        return sha256_file(path)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        tensors = {name: f.get_tensor(name) for name in f.keys()}
        metadata = f.metadata() or {}
    return hashlib.sha256((tensors_digest(tensors) + json.dumps(metadata, sort_keys=True)).encode()).hexdigest()


def read_fingerprint(path: str | os.PathLike) -> Fingerprint | None:
    """The fingerprint stored at ``path`` (``None`` when there is none)."""
    path = Path(path)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def changes(old: Fingerprint, new: Fingerprint, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every key whose value differs (absent keys read as ``None``); nested
    mappings are compared key by key (``config.seed: 0 -> 1``)."""
    found = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            found += changes(a, b, f"{prefix}{key}.")
        else:
            found.append(f"{prefix}{key}: {_short(a)} -> {_short(b)}")
    return found


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def clear_directory(directory: Path, keep: Collection[Path]) -> None:
    """Delete everything in ``directory`` except the paths in ``keep`` and the directory locks
    (``videobert.utils.dirlock``: deleting a held lock file would let a second writer in)."""
    for entry in directory.iterdir():
        if entry in keep or (entry.name.startswith(".videobert.") and entry.name.endswith(".lock")):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def check_fingerprint(path: str | os.PathLike, stage: str, fingerprint: Fingerprint, restart_hint: str = "--overwrite") -> bool:
    """Read-only half of :func:`claim_output`: True when ``path`` holds exactly ``fingerprint``,
    False when it holds none; raises ``StaleOutputError`` when it holds another."""
    fingerprint = json.loads(json.dumps(fingerprint, default=str))  # as it will read back
    old = read_fingerprint(path)
    if old is None:
        return False
    if old != fingerprint:
        raise StaleOutputError(
            f"{Path(path).parent} holds {stage} outputs made another way ({'; '.join(changes(old, fingerprint))}); "
            f"rerun with {restart_hint} to delete them and start over, or choose another output directory")
    return True


def claim_output(path: str | os.PathLike, stage: str, fingerprint: Fingerprint, overwrite: bool = False,
                 clear: Callable[[], None] | None = None, restart_hint: str = "--overwrite") -> None:
    """Make ``path`` (a fingerprint file beside a stage's outputs) hold ``fingerprint``; see the
    module docstring. ``clear`` deletes the stage's old outputs (default: everything in the
    fingerprint's directory but the fingerprint itself); ``restart_hint`` is what the error tells
    the user to add (``--overwrite``, ``overwrite=true``)."""
    path = Path(path)
    if overwrite:
        if path.parent.is_dir():
            (clear or (lambda: clear_directory(path.parent, {path})))()
    elif check_fingerprint(path, stage, fingerprint, restart_hint):
        return
    write_json_atomic(path, json.loads(json.dumps(fingerprint, default=str)))
