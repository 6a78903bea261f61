"""Visual words: hierarchical k-means over clip features (VideoBERT: 4 levels x 12 = 20,736 words)."""

from videobert.visual_words.hierarchical import HierarchicalKMeans

__all__ = ["HierarchicalKMeans"]
