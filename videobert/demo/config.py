"""The demo's sizes. ``full`` is the README's main command (<= 15 min on 2 CPU cores); ``small``
is the same pipeline shrunk for the test suite (well under 3 minutes).

Reductions from the paper, all for speed on a laptop CPU, none of them in the library's defaults:
- S3D reads 64 x 64 frames (paper: 224 x 224); the network is unchanged (random weights unless
  ``--s3d-weights`` gives torchvision's Kinetics file). 20 fps and 30-frame clips as in the paper.
- visual words: a 2-level tree of 12 (144 words; paper: 4 levels, 20,736).
- text: BERT's WordPiece vocabulary cut down to the demo's own words (152 ids; paper: 30,522),
  which makes a step several times cheaper (``videobert.text.subset_vocab``).
- model: 2 layers, hidden 128, trained from scratch for 7,000 steps of 32 examples (paper: BERT-large
  initialised from BERT, 500k steps).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from videobert.demo.synthetic import SyntheticConfig


@dataclass
class DemoConfig:
    size: str = "full"
    family: str = "videobert"           # the model family trained and scored (videobert.models.FAMILIES)
    seed: int = 0
    s3d_weights: str = ""               # torchvision S3D state dict; "" = random weights (seeded)
    data: SyntheticConfig = field(default_factory=SyntheticConfig)
    frame_size: int = 64                # S3D input side in pixels
    clip_frames: int = 30
    fps: int = 20
    levels: int = 2                     # hierarchical k-means tree
    branching: int = 12
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 256
    # "learned": each visual word's embedding is a learned linear map of its S3D centroid, so words
    # that look alike start and stay close; "fixed" (the centroids only set a free table's start)
    # learns verbs about as well but never learns alignment here (README, "What the demo reaches").
    visual_projection: str = "learned"
    max_length: int = 128               # tokens per training sequence
    steps: int = 7000
    batch_size: int = 32
    micro_batch_size: int = 16
    lr: float = 2e-3                    # a 2-layer model from scratch takes a far larger rate than BERT-large
    warmup_steps: int = 30
    # Twice the paper's masking and more video-text examples: the signal that ties words to
    # visual words is what a few minutes of training must pick up.
    stream_weights: tuple[float, float, float] = (1.0, 1.0, 3.0)   # text-only, video-only, video-text
    negative_rate: float = 0.25         # share of video-text examples whose text is another video's
    mask_prob: float = 0.3
    concat_prob: float = 0.5            # the paper's augmentation: adjacent sentences joined ...
    max_stride: int = 5                 # ... and visual words thinned with a random stride of 1 .. max_stride
    alignment_loss_weight: float = 1.0  # weight of the alignment loss beside masked text and visual words
    num_ranks: int = 2                  # DeepSpeed CPU ranks (1 = one plain process)
    # each micro-batch's examples packed into fewer rows where the family can (data.pack_sequences):
    # the same losses on about half the positions, 1.2x faster steps (benchmarks/RESULTS.md, the demo)
    pack_sequences: bool = True
    # captioning: the paper's captioner (2 layers, hidden 128, dropout 0.4, batch 128, Adam 1e-3 with
    # linear decay) for 100 steps (~38 epochs of the 333 training segments; paper: 40,000 steps), one
    # captioner per seed and feature variant. One seed keeps the stage short; the README gives 3.
    caption_steps: int = 100
    caption_seeds: tuple[int, ...] = (0,)
    caption_beam_size: int = 5

    @property
    def num_visual_words(self) -> int:
        return self.branching**self.levels


def demo_config(size: str = "full", seed: int = 0, s3d_weights: str = "", family: str = "videobert") -> DemoConfig:
    """The preset called ``size`` ("full" or "small") with the given seed, for model family ``family``."""
    if size == "full":
        return DemoConfig(size=size, family=family, seed=seed, s3d_weights=s3d_weights, data=SyntheticConfig(seed=seed))
    if size == "small":
        return DemoConfig(
            size=size, family=family, seed=seed, s3d_weights=s3d_weights,
            data=SyntheticConfig(n_train=10, n_heldout=4, segments_per_video=(2, 2), segment_seconds=(3.5, 4.5), seed=seed),
            frame_size=32, branching=4, hidden_size=64, intermediate_size=128,
            steps=30, batch_size=8, micro_batch_size=4, warmup_steps=5, caption_steps=10,
        )
    raise ValueError(f"demo size must be 'full' or 'small', got {size!r}")
