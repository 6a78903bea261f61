"""videobert: VideoBERT (Sun et al., 2019) as installable, tested, fast software.

Pipeline: video -> clips -> S3D features -> visual words -> corpus (+ transcripts) -> joint BERT.
See docs/ARCHITECTURE.md for the map of the package.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy: `import videobert` (and `videobert --help`) must not pay for torch.
    if name == "VideoBertPipeline":
        from videobert.pipeline import VideoBertPipeline

        return VideoBertPipeline
    raise AttributeError(f"module 'videobert' has no attribute {name!r}")
