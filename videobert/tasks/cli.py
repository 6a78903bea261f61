"""``videobert eval zero-shot | forecast | text-to-video | export-features | gallery | retrieval | alignment | caption``.

Visual words come from ``--video-words FILE`` (an ``.npz`` video-word table, see
``videobert.tasks.sources``) or from ``--features DIR --kmeans FILE`` (assigned on the fly).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="downstream tasks: zero-shot, forecast, text-to-video, features, galleries, "
                                                     "retrieval, alignment, captioning")
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)

    zero = tasks.add_parser("zero-shot", help="zero-shot verb/object classification on YouCook II-format annotations")
    _model_args(zero)
    _words_args(zero)
    zero.add_argument("--annotations", required=True, help="YouCook II-format annotation JSON")
    zero.add_argument("--subset", help="keep only videos of this subset, e.g. validation")
    zero.add_argument("--verbs", required=True, help="verb vocabulary, one per line")
    zero.add_argument("--objects", required=True, help="object vocabulary, one per line")
    zero.add_argument("--scoring", choices=("mean", "first"), default="mean",
                      help="multi-WordPiece words: mean piece log-prob with one mask per piece, or first piece only")
    zero.add_argument("--out", required=True, help="directory for zero_shot.json and zero_shot.png")
    zero.set_defaults(func=run_zero_shot)

    forecast = tasks.add_parser("forecast", help="next-visual-word forecasting: accuracy@k on held-out videos")
    _model_args(forecast)
    _words_args(forecast)
    forecast.add_argument("--videos", help="file of held-out video ids, one per line (default: every video)")
    forecast.add_argument("--context", type=int, default=16, help="visual words of context")
    forecast.add_argument("--min-context", type=int, default=1)
    forecast.add_argument("--stride", type=int, default=1, help="predict every stride-th position")
    forecast.add_argument("--ks", default="1,3,5", help="comma-separated k of accuracy@k")
    forecast.add_argument("--out", required=True, help="JSON report path")
    forecast.set_defaults(func=run_forecast)

    t2v = tasks.add_parser("text-to-video", help="generate visual words from sentences")
    _model_args(t2v)
    t2v.add_argument("--sentence", action="append", required=True, help="a sentence (repeatable)")
    t2v.add_argument("--num-words", type=int, default=8)
    t2v.add_argument("--words-per-step", type=int, default=1)
    t2v.add_argument("--temperature", type=float, default=0.0, help="0: greedy; > 0: sample (seeded)")
    t2v.add_argument("--gallery", help="gallery file: also draw each result as thumbnails")
    t2v.add_argument("--out", required=True, help="directory for text_to_video.json (and PNGs)")
    t2v.set_defaults(func=run_text_to_video)

    export = tasks.add_parser("export-features", help="pooled and per-token hidden states of segments, to safetensors")
    _model_args(export)
    _words_args(export)
    export.add_argument("--annotations", help="segments from YouCook II-format annotations (default: every "
                                              "--segment-words words of each video)")
    export.add_argument("--with-text", action="store_true", help="encode each annotation's sentence with its video")
    export.add_argument("--segment-words", type=int, default=16)
    export.add_argument("--segments-per-shard", type=int, default=1024)
    export.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    export.add_argument("--out", required=True, help="output directory of features-*.safetensors shards")
    export.add_argument("--overwrite", action="store_true", help="delete shards exported from another model or segments")
    export.set_defaults(func=run_export_features)

    gallery = tasks.add_parser("gallery", help="visual-word gallery: exemplar clips per word, PNG grids")
    gallery.add_argument("--features", required=True, help="videobert extract output directory")
    gallery.add_argument("--kmeans", required=True, help="fitted hierarchical k-means (safetensors)")
    gallery.add_argument("--videos-dir", required=True, help="directory of the videos (<video id>.<ext>)")
    gallery.add_argument("--k", type=int, default=4, help="exemplars kept per word")
    gallery.add_argument("--size", type=int, default=64, help="thumbnail side, pixels")
    gallery.add_argument("--timeline", action="append", default=[], help="draw this video's words in time order")
    gallery.add_argument("--word", type=int, action="append", default=[], help="draw this word's exemplars")
    gallery.add_argument("--out", required=True, help="directory for gallery.safetensors and PNGs")
    gallery.set_defaults(func=run_gallery)

    from videobert.tasks.captioning.cli import register_caption

    register_caption(tasks)

    from videobert.tasks.retrieval import DEFAULT_K, DEFAULT_MODE, MODES

    retrieval = tasks.add_parser("retrieval", help="text-video retrieval: R@1/5/10, median and mean rank, both directions")
    _model_args(retrieval)
    _words_args(retrieval)
    _segment_args(retrieval)
    retrieval.add_argument("--mode", choices=MODES, default=DEFAULT_MODE,
                           help="two-tower: cosine of the text's and the video's [CLS] states, each encoded alone "
                                "(fast); rerank: two-tower top --k ordered by the cross-encoder; cross: alignment "
                                "head on every pair (exact, quadratic)")
    retrieval.add_argument("--k", type=int, default=DEFAULT_K, help="rerank: candidates per query the cross-encoder orders")
    retrieval.add_argument("--videos-dir", help="videos (<video id>.<ext>): the PNG shows queries with thumbnails")
    retrieval.add_argument("--out", required=True, help="directory for retrieval.json and retrieval.png")
    retrieval.set_defaults(func=run_retrieval, batch_size=256)

    alignment = tasks.add_parser("alignment", help="alignment accuracy: each segment with its own sentence and "
                                                   "with another's (chance 50%%)")
    _model_args(alignment)
    _words_args(alignment)
    _segment_args(alignment)
    alignment.add_argument("--out", required=True, help="directory for alignment.json")
    alignment.set_defaults(func=run_alignment, batch_size=64)


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="from_pretrained model directory")
    parser.add_argument("--tokenizer", help="tokenizer.json or vocab.txt (default: the model directory's own, "
                                            "else BERT uncased)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, or auto")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)


def _words_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video-words", help=".npz video-word table")
    parser.add_argument("--features", help="videobert extract output directory (with --kmeans)")
    parser.add_argument("--kmeans", help="fitted hierarchical k-means (safetensors)")


def _segment_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotations", required=True, help="YouCook II-format annotation JSON")
    parser.add_argument("--subset", help="keep only videos of this subset, e.g. validation")
    parser.add_argument("--transcripts", help="directory of <video id>.vtt: use the narration spoken during each "
                                              "segment instead of its annotated sentence (as the demo does)")


def _segments(args: argparse.Namespace):
    """The annotated segments, their sentences swapped for the narration given ``--transcripts``."""
    from videobert.tasks.alignment import narrated
    from videobert.tasks.annotations import read_youcook_annotations

    segments = read_youcook_annotations(args.annotations, args.subset)
    return narrated(segments, args.transcripts) if args.transcripts else segments


def _load_model(args: argparse.Namespace):
    import torch

    from videobert.models import family_of_directory
    from videobert.utils.seed import seed_everything

    family = family_of_directory(args.model)
    if family.name != "videobert":
        # these commands read videos as visual words (--video-words / --features + --kmeans); the other
        # families read their own stores, through their task hooks (videobert.tasks.scoring)
        raise SystemExit(f"{args.model} is a {family.name} model: `videobert eval` reads videos as visual words and "
                         f"scores VideoBERT models; score a {family.name} model with `videobert demo --family "
                         f"{family.name}` or in Python with its family's scoring hooks (videobert.models.get_family"
                         f"({family.name!r}).scoring)")
    seed_everything(args.seed)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    return family.from_pretrained(args.model).to(device).eval()


def _load_tokenizer(args: argparse.Namespace, model):
    """The tokenizer given, else the one saved with the model, else BERT uncased; it must fit the model."""
    from videobert.text import WordPieceTokenizer

    if args.tokenizer:
        tokenizer = WordPieceTokenizer(args.tokenizer)
    else:
        try:
            tokenizer = WordPieceTokenizer(args.model)  # the model directory's own tokenizer.json / vocab.txt
        except FileNotFoundError:
            tokenizer = WordPieceTokenizer()
    if tokenizer.vocab_size != model.config.text_vocab_size:
        raise ValueError(f"tokenizer {tokenizer.path} has {tokenizer.vocab_size} ids but the model {args.model} reads "
                         f"{model.config.text_vocab_size}: give the model's own with --tokenizer")
    return tokenizer


def _video_words(args: argparse.Namespace, video_ids=None):
    from videobert.tasks.sources import load_kmeans, load_video_words, words_from_features

    if args.video_words:
        table = load_video_words(args.video_words)
        return table if video_ids is None else {v: table[v] for v in video_ids if v in table}
    if not (args.features and args.kmeans):
        raise SystemExit("give --video-words FILE, or --features DIR and --kmeans FILE")
    return words_from_features(args.features, load_kmeans(args.kmeans), video_ids)


def run_zero_shot(args: argparse.Namespace) -> int:
    from videobert.tasks.annotations import read_word_list, read_youcook_annotations
    from videobert.tasks.plots import plot_zero_shot_per_class
    from videobert.tasks.zero_shot import ZeroShotClassifier
    from videobert.utils.io import write_json_atomic

    segments = read_youcook_annotations(args.annotations, args.subset)
    model = _load_model(args)
    classifier = ZeroShotClassifier(model, _load_tokenizer(args, model), read_word_list(args.verbs),
                                    read_word_list(args.objects), args.scoring, args.batch_size)
    result = classifier.evaluate(segments, _video_words(args, {s.video_id for s in segments})).to_dict()
    out = Path(args.out)
    write_json_atomic(out / "zero_shot.json", result)
    plot_zero_shot_per_class(result, out / "zero_shot.png")
    for slot in ("verb", "object"):
        v, p = result[slot]["video"], result[slot]["prior"]
        print(f"{slot}: top-1 {v['top1']:.3f} top-5 {v['top5']:.3f} (language prior {p['top1']:.3f} / {p['top5']:.3f}), "
              f"{v['count']} segments")
    print(f"skipped: {result['skipped']}; report {out / 'zero_shot.json'}")
    return 0


def run_forecast(args: argparse.Namespace) -> int:
    from videobert.tasks.forecasting import forecast_accuracy, forecast_next
    from videobert.utils.io import write_json_atomic

    video_ids = None
    if args.videos:
        video_ids = [line.strip() for line in Path(args.videos).read_text().splitlines() if line.strip()]
    table = _video_words(args, video_ids)
    model = _load_model(args)
    ks = tuple(int(k) for k in args.ks.split(","))
    result = forecast_accuracy(model, [words for words, _ in table.values()], ks, args.context, args.min_context,
                               args.stride, args.batch_size)
    examples = {}
    for video_id, (words, _) in list(table.items())[:5]:  # the paper's qualitative view: top 3 after a context
        context = words[: min(args.context, max(1, len(words) // 2))].tolist()
        examples[video_id] = {"context": context, "top3": forecast_next(model, context, 3)}
    result["examples"] = examples
    write_json_atomic(args.out, result)
    print(", ".join(f"{k} {v:.4f}" for k, v in result.items() if k.startswith("accuracy")) +
          f" over {result['num_targets']} targets; report {args.out}")
    return 0


def run_text_to_video(args: argparse.Namespace) -> int:
    from videobert.tasks.text_to_video import text_to_video
    from videobert.utils.io import write_json_atomic
    from videobert.visual_words.gallery import ExemplarGallery, render_text_to_video

    model = _load_model(args)
    tokenizer = _load_tokenizer(args, model)
    gallery = ExemplarGallery.load(args.gallery) if args.gallery else None
    out = Path(args.out)
    results = []
    for i, sentence in enumerate(args.sentence):
        words = text_to_video(model, tokenizer, sentence, args.num_words, args.words_per_step, args.temperature,
                              args.seed + i)
        results.append({"sentence": sentence, "visual_words": words})
        if gallery is not None:
            render_text_to_video(sentence, words, gallery, out / f"text_to_video_{i:03d}.png")
        print(f"{sentence!r}: {words}")
    write_json_atomic(out / "text_to_video.json", results)
    return 0


def run_export_features(args: argparse.Namespace) -> int:
    import torch

    from videobert.tasks.annotations import read_youcook_annotations
    from videobert.tasks.export import SegmentInput, export_features
    from videobert.tasks.sources import segment_words

    model = _load_model(args)
    segments: list[SegmentInput] = []
    if args.annotations:
        annotated = read_youcook_annotations(args.annotations)
        table = _video_words(args, {s.video_id for s in annotated})
        texts = _load_tokenizer(args, model).encode_batch([s.sentence for s in annotated]) if args.with_text else None
        for i, s in enumerate(annotated):
            words = segment_words(*table[s.video_id], s.start, s.end) if s.video_id in table else []
            if len(words) == 0:
                log.warning("no visual words for %s %.1f-%.1f s; not exported", s.video_id, s.start, s.end)
                continue
            segments.append(SegmentInput(s.video_id, s.start, s.end, tuple(words.tolist()),
                                         tuple(texts[i]) if texts else None))
    else:
        n = args.segment_words
        for video_id, (words, times) in _video_words(args).items():
            for a in range(0, len(words), n):
                segments.append(SegmentInput(video_id, float(times[a, 0]), float(times[min(a + n, len(words)) - 1, 1]),
                                             tuple(words[a : a + n].tolist())))
    paths = export_features(model, segments, args.out, args.segments_per_shard, args.batch_size,
                            getattr(torch, args.dtype), overwrite=args.overwrite)
    print(f"exported {len(segments)} segments to {len(paths)} shard(s) in {args.out}")
    return 0


def run_retrieval(args: argparse.Namespace) -> int:
    from videobert.tasks.retrieval import evaluate_retrieval
    from videobert.tasks.retrieval.plots import plot_retrieval
    from videobert.utils.io import write_json_atomic

    segments = _segments(args)
    model = _load_model(args)
    result = evaluate_retrieval(model, _load_tokenizer(args, model), segments,
                                _video_words(args, {s.video_id for s in segments}), args.mode, args.k, args.batch_size,
                                progress=True)
    result["text"] = "narration" if args.transcripts else "annotations"
    out = Path(args.out)
    write_json_atomic(out / "retrieval.json", result)
    plot_retrieval(result, out / "retrieval.png", args.videos_dir)
    for direction in ("text_to_video", "video_to_text"):
        r = result[direction]
        print(f"{direction.replace('_', ' ')}: R@1 {r['R@1']:.3f} R@5 {r['R@5']:.3f} R@10 {r['R@10']:.3f} "
              f"MedR {r['MedR']:g} MeanR {r['MeanR']:.1f} (chance R@1 {r['chance_R@1']:.3f}), {r['queries']} queries")
    print(f"{result['segments']} segments, {result['sentences']} sentences, mode {result['mode']}, "
          f"{result['pairs_scored']} pairs in {result['seconds']:.1f} s; skipped: {result['skipped']}; "
          f"report {out / 'retrieval.json'}")
    return 0


def run_alignment(args: argparse.Namespace) -> int:
    from videobert.tasks.alignment import alignment_accuracy
    from videobert.utils.io import write_json_atomic

    segments = _segments(args)
    model = _load_model(args)
    result = alignment_accuracy(model, _load_tokenizer(args, model), segments,
                                _video_words(args, {s.video_id for s in segments}), args.seed, args.batch_size)
    result["text"] = "narration" if args.transcripts else "annotations"
    write_json_atomic(Path(args.out) / "alignment.json", result)
    print(f"alignment accuracy {result['accuracy']:.3f} (chance {result['chance']:.0%}) over {result['pairs']} pairs; "
          f"report {Path(args.out) / 'alignment.json'}")
    return 0


def run_gallery(args: argparse.Namespace) -> int:
    from videobert.tasks.sources import load_kmeans, words_from_features
    from videobert.visual_words.gallery import build_gallery, render_grid, render_video_words, render_word_exemplars

    kmeans = load_kmeans(args.kmeans)
    gallery = build_gallery(args.features, kmeans, args.videos_dir, args.k, args.size)
    out = Path(args.out)
    gallery.save(out / "gallery.safetensors")
    words = gallery.words()
    render_grid([gallery.thumbnail(w) for w in words[:512]], [str(w) for w in words[:512]], out / "words.png",
                gallery.size, columns=16, title=f"{len(words)} visual words seen (first 512)")
    if args.timeline:
        table = words_from_features(args.features, kmeans, args.timeline)
        for video_id, (video_words, times) in table.items():
            render_video_words(video_words.tolist(), gallery, out / f"video_{video_id}.png", times, title=video_id)
    for word in args.word:
        render_word_exemplars(word, gallery, out / f"word_{word}.png")
    print(json.dumps({"words_seen": len(words), "gallery": str(out / "gallery.safetensors")}))
    return 0
