"""Downstream tasks on a pretrained VideoBERT (``videobert eval ...``).

    annotations    YouCook II annotation files, class vocabularies, verb / object of a sentence
    sources        video-word tables: video id -> (visual words [n], clip times [n, 2] s)
    inputs         model inputs in the unified layout of ``videobert.vocab``
    metrics        top-k accuracy, overall and per class
    zero_shot      zero-shot action classification ("now let me show you how to [MASK] the [MASK]")
    forecasting    the next visual words; accuracy@k on held-out sequences
    text_to_video  visual words generated from a sentence, filled one mask at a time
    export         pooled and per-token hidden states of segments, to safetensors shards
    retrieval      text-video retrieval, R@K and median rank: cross-encoder, two-tower, re-rank
    alignment      alignment accuracy (own sentence vs another's); narration in place of annotations
    captioning     captioning on VideoBERT features (s3d / videobert / videobert+s3d), COCO caption metrics
    plots          zero-shot results per class as PNG

Visual-word galleries (what a word looks like) live in ``videobert.visual_words.gallery``.
"""
