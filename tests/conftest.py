"""Test session setup.

Triton runs in its interpreter on machines without a GPU; that must be decided before anything
imports triton. On a GPU host Triton kernels run on CUDA tensors (see tests/devices.py).
Tests marked ``gpu`` are skipped, with that reason, where no CUDA device is present.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu" if not torch.cuda.is_available() else "cuda")
# One fixed tile config for the Triton loss head keeps a GPU test run from autotuning every small
# test shape; test_masked_token_loss.py turns autotuning back on where it tests it.
os.environ.setdefault("VIDEOBERT_TRITON_AUTOTUNE", "0")

import pytest  # noqa: E402

from videobert.features.regions.torchvision_import import import_torchvision  # noqa: E402

# PyPI's torchvision (ActBERT's Faster R-CNN) cannot load its compiled operators beside the CPU torch,
# and transformers (the BERT reference tests) imports it whenever it is installed: make that import work.
try:
    import_torchvision()
except ImportError:  # no torchvision: nothing to do
    pass


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def tokenizer():
    """BERT's uncased WordPiece from the offline files (read-only, so one serves every test)."""
    from videobert.text import WordPieceTokenizer

    return WordPieceTokenizer()
