"""VideoPrism (Zhao et al., ICML 2024): a factorised video ViT from pixels, trained video-text
contrastive (stage 1), then by masked video modelling distilled from the stage-1 model (stage 2)."""

from videobert.models.videoprism.config import TextTowerConfig, VideoPrismConfig
from videobert.models.videoprism.model import VideoPrismForPretraining

__all__ = ["TextTowerConfig", "VideoPrismConfig", "VideoPrismForPretraining"]
