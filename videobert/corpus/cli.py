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
    p.add_argument("--overwrite", action="store_true",
                   help="delete a corpus in --out built with other settings or inputs and start over")
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
    from videobert.corpus.build import CorpusConfig

    config = CorpusConfig(heldout_fraction=args.heldout_fraction, seed=args.seed, max_pause=args.max_pause,
                          max_sentence_words=args.max_sentence_words)
    info = build_corpus_from_features(args.features, args.visual_words, args.transcripts, args.out, config,
                                      args.tokenizer, overwrite=args.overwrite)
    for split, counts in info["splits"].items():
        print(f"{split}: {counts['videos']} videos, {counts['sentences']} sentences, {counts['chunks']} video segments, "
              f"{counts['words']} visual words, {counts['text_ids']} WordPiece ids")
    orphans = info["transcripts_without_video"]
    print(f"failed videos: {len(info['videos_failed'])}, transcripts not used: {len(info['transcript_errors'])}"
          + (f", transcripts without a video: {len(orphans)}" if orphans else ""))
    return 0 if any(c["videos"] for c in info["splits"].values()) else 1


def build_corpus_from_features(features: str, visual_words: str, transcripts: str | None, out: str, config,
                               tokenizer: str | None = None, overwrite: bool = False) -> dict:
    """``videobert corpus build`` as a function: every finished video of ``features`` with its words
    from the tree file ``visual_words`` and its transcript (``<video_id>.vtt|.srt|.json`` in
    ``transcripts``, if any). ``config.num_visual_words`` is set from the tree. Returns ``corpus.json``
    plus ``transcripts_without_video`` (transcripts whose video has no features: reported, unused)."""
    import dataclasses
    import logging

    from videobert.corpus.build import build_corpus
    from videobert.features.fingerprint import features_fingerprint
    from videobert.features.store import finished_video_ids
    from videobert.text import WordPieceTokenizer
    from videobert.utils.fingerprint import sha256_file
    from videobert.visual_words import HierarchicalKMeans

    model = HierarchicalKMeans.load(visual_words)
    index = _transcript_index(transcripts)
    video_ids = finished_video_ids(features)
    if video_ids:  # a tree of another feature space would fail every video: say so once, up front
        from videobert.features.store import read_video_features

        dim = read_video_features(features, video_ids[0])[0].shape[1]
        if dim != model.dim:
            raise ValueError(f"the tree {visual_words} was fitted on {model.dim}-d features but {features} holds "
                             f"{dim}-d features (video {video_ids[0]!r}): fit the tree on these features")
    orphans = sorted(set(index) - set(video_ids))
    if orphans:
        logging.getLogger("videobert.corpus").warning(
            "%d transcript(s) have no extracted video in %s and are not used: %s", len(orphans), features, orphans[:5])
    config = dataclasses.replace(config, num_visual_words=model.branching**model.levels)
    sources = {"features": features_fingerprint(features),
               "transcripts": {video_id: sha256_file(path) for video_id, path in index.items()}}
    videos = ((video_id, _words_loader(features, video_id, model), None, index.get(video_id)) for video_id in video_ids)
    info = build_corpus(videos, out, config, WordPieceTokenizer(tokenizer), visual_words=visual_words,
                        sources=sources, overwrite=overwrite)
    return {**info, "transcripts_without_video": orphans}


def _words_loader(features_dir: str, video_id: str, model):
    """Reads one video's features and assigns its visual words when called (inside the build's
    per-video error handling, so an unreadable or NaN feature file is recorded, not fatal)."""
    def load():
        from videobert.features.store import read_video_features

        try:
            features, times = read_video_features(features_dir, video_id)
            return model.assign(features), times
        except Exception as exc:  # safetensors raises its own types for damaged files
            raise ValueError(f"features of video {video_id!r} in {features_dir}: {exc}") from exc
    return load
