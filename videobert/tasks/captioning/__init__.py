"""Video captioning on a model's features (VideoBERT's, or another family's), the paper's protocol (section 4.5), scored with the COCO
caption metrics.

    vocabulary   the captioner's word vocabulary, built from the training captions
    data         a video's clips (S3D features, times, visual words); annotated segments -> clip rows
    features     the variants: s3d, the model's clip features (VideoBERT: the paper's template), both
    captioner    the transformer encoder-decoder (Zhou et al. 2018), save / load
    decoding     greedy and beam search
    train        training on the training subset (the paper's settings)
    metrics      BLEU-1..4, METEOR, ROUGE-L, CIDEr computed by pycocoevalcap (needs Java)
    task         everything end to end: ``videobert eval caption`` and the demo's caption stage
    pictures     captions.png
"""

from videobert.tasks.captioning.captioner import Captioner, CaptionerConfig
from videobert.tasks.captioning.data import CaptionSegment, VideoClips, load_video_clips, select_segments
from videobert.tasks.captioning.features import VARIANTS, variant_inputs, variants_of
from videobert.tasks.captioning.metrics import METRICS, JavaNotFoundError, caption_metrics, caption_metrics_many
from videobert.tasks.captioning.task import CaptioningSettings, run_captioning, split_annotations
from videobert.tasks.captioning.train import CaptionerTrainConfig, TrainResult, train_captioner
from videobert.tasks.captioning.vocabulary import CaptionVocabulary, caption_words

__all__ = [
    "Captioner", "CaptionerConfig", "CaptionSegment", "VideoClips", "load_video_clips", "select_segments", 
    "VARIANTS", "variant_inputs", "variants_of", "METRICS", "JavaNotFoundError", "caption_metrics",
    "caption_metrics_many", "CaptioningSettings", "run_captioning", "split_annotations", "CaptionerTrainConfig",
    "TrainResult", "train_captioner", "CaptionVocabulary", "caption_words",
]
