"""``videobert corpus build``: features + visual-words model + transcripts -> a corpus directory."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    corpus = subparsers.add_parser("corpus", help="build the pretraining corpus")
    commands = corpus.add_subparsers(dest="corpus_command", metavar="COMMAND", required=True)
    p = commands.add_parser(
        "build", help="segments, sentences and WordPiece ids for every extracted video",
        description="Assign visual words to every video's clip features, read its transcript (a file in "
                    "--transcripts whose stem is the video id: .vtt, .srt or .json), split it into sentences, "
                    "tokenize, and write the columnar corpus with a manifest. A bad transcript is recorded and "
                    "its video still gives video-only data. Reruns resume.")
    p.add_argument("--features", required=True, help="directory written by `videobert extract`")
    p.add_argument("--visual-words", required=True, help="hierarchical k-means model file (`videobert visual-words fit`)")
    p.add_argument("--transcripts", help="directory of transcripts named <video_id>.vtt/.srt/.json (none: video only)")
    p.add_argument("--out", required=True, help="corpus directory")
    p.add_argument("--tokenizer", help="tokenizer.json, vocab.txt or a folder with one (default: the offline BERT uncased files)")
    p.add_argument("--heldout-fraction", type=float, default=0.05, help="share of videos held out (default 0.05)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train / held-out assignment")
    p.add_argument("--max-pause", type=float, default=1.0, help="seconds of silence that end a sentence (default 1.0)")
    p.add_argument("--max-sentence-words", type=int, default=40, help="longest sentence in words (default 40)")
    p.set_defaults(func=_build)


def _transcript_index(directory: str | None) -> dict[str, str]:
    """video id -> transcript path; two transcripts for one video is an error (which one to trust?)."""
    from pathlib import Path

    from videobert.text import TRANSCRIPT_EXTENSIONS

    index: dict[str, str] = {}
    if directory is None:
        return index
    for path in sorted(Path(directory).iterdir()):
        if path.suffix.lower() in TRANSCRIPT_EXTENSIONS and not path.name.startswith("."):
            if path.stem in index:
                raise SystemExit(f"two transcripts for video {path.stem!r}: {index[path.stem]} and {path}")
            index[path.stem] = str(path)
    return index


def _build(args: argparse.Namespace) -> int:
    from videobert.corpus.build import CorpusConfig, build_corpus
    from videobert.features.store import iter_video_features
    from videobert.text import WordPieceTokenizer
    from videobert.visual_words import HierarchicalKMeans

    model = HierarchicalKMeans.load(args.visual_words)
    transcripts = _transcript_index(args.transcripts)
    config = CorpusConfig(heldout_fraction=args.heldout_fraction, seed=args.seed,
                          num_visual_words=model.branching**model.levels, max_pause=args.max_pause,
                          max_sentence_words=args.max_sentence_words)
    videos = ((video_id, model.assign(features), times, transcripts.get(video_id))
              for video_id, features, times in iter_video_features(args.features))
    info = build_corpus(videos, args.out, config, WordPieceTokenizer(args.tokenizer))
    for split, counts in info["splits"].items():
        print(f"{split}: {counts['videos']} videos, {counts['sentences']} sentences, {counts['chunks']} video segments, "
              f"{counts['words']} visual words, {counts['text_ids']} WordPiece ids")
    print(f"failed videos: {len(info['videos_failed'])}, transcripts not used: {len(info['transcript_errors'])}")
    return 0 if any(c["videos"] for c in info["splits"].values()) else 1
