"""``report.json`` and the short text the demo prints at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from videobert.demo.pipeline import DemoPipeline


def build_report(pipeline: "DemoPipeline", outcomes: dict[str, dict[str, Any]], total_seconds: float) -> dict[str, Any]:
    """Accuracies beside chance, what was made, and each stage's wall time (seconds; a stage
    resumed from an earlier run keeps the time it took then)."""
    evaluation = outcomes["evaluate"]["result"]
    zero_shot = {slot: {k: None if v is None else round(float(v), 4) for k, v in evaluation[slot].items()}
                 for slot in ("verb", "object")}
    alignment = evaluation["alignment"]
    return {
        "size": pipeline.config.size,
        "seed": pipeline.config.seed,
        "family": pipeline.config.family,
        "zero_shot": {**zero_shot, "method": evaluation.get("method", "fill-in"), "segments": evaluation["segments"],
                      "skipped": evaluation["skipped"]},
        "alignment": {"accuracy": round(alignment["accuracy"], 4), "chance": alignment["chance"], "pairs": alignment["pairs"],
                      "positive_accuracy": round(alignment["positive_accuracy"], 4),
                      "negative_accuracy": round(alignment["negative_accuracy"], 4)},
        "retrieval": _retrieval(evaluation["retrieval"]),
        "captioning": _captioning(outcomes["caption"]["result"]),
        "stage_seconds": {name: outcome["seconds"] for name, outcome in outcomes.items()},
        "resumed_stages": [name for name, outcome in outcomes.items() if outcome["resumed"]],
        "total_seconds": round(total_seconds, 2),
        "data": outcomes["generate"]["result"],
        "visual_words": outcomes["visual_words"]["result"],
        "corpus": outcomes["corpus"]["result"],
        "pretrain": outcomes["pretrain"]["result"],
        "outputs": {
            "model": outcomes["pretrain"]["result"]["model_dir"],
            "tensorboard": "pretrain/tensorboard",
            "zero_shot": "eval/zero_shot.json",
            "alignment": "eval/alignment.json",
            "retrieval": "eval/retrieval.json",
            "captioning": "eval/captioning/metrics.json",
            "captions": "eval/captioning/captions.png",
            **outcomes["pictures"]["result"],
        },
    }


def _retrieval(result: dict[str, Any]) -> dict[str, Any]:
    """The retrieval figures the report keeps: R@1/5/10, MedR, MeanR and chance R@1 per direction."""
    def direction(metrics: dict[str, float]) -> dict[str, float]:
        return {key: round(float(metrics[key]), 4) for key in ("R@1", "R@5", "R@10", "MedR", "MeanR", "chance_R@1")}

    return {"text_to_video": direction(result["text_to_video"]), "video_to_text": direction(result["video_to_text"]),
            **{key: result[key] for key in ("mode", "k", "text", "segments", "sentences", "duplicate_segments")}}


def _captioning(result: dict[str, Any]) -> dict[str, Any]:
    """Per variant the seven COCO metrics (median over the captioner seeds) and each seed's values,
    the most-common-training-caption baseline, and the segment counts."""
    from videobert.tasks.captioning import METRICS

    variants = result["settings"]["variants"]

    def rounded(scores: dict[str, Any]) -> dict[str, Any]:
        return {m: round(float(scores[m]), 4) for m in METRICS}

    out: dict[str, Any] = {v: {**rounded(result[v]), "per_seed": {m: [round(x, 4) for x in result[v]["per_seed"][m]]
                                                                    for m in METRICS}} for v in variants}
    out["most_common_caption"] = {**rounded(result["most_common_caption"]), "caption": result["most_common_caption"]["caption"]}
    out["seeds"] = result[variants[0]]["seeds"]
    out["segments"] = result["segments"]
    out["skipped"] = result["skipped"]
    return out


def format_report(report: dict[str, Any], out_dir: str) -> str:
    """A few lines for the terminal."""
    family = report["family"]
    lines = [f"videobert demo ({family}, {report['size']}, seed {report['seed']}): held-out results on "
             f"{report['zero_shot']['segments']} annotated segments"]
    for slot in ("verb", "object"):
        r = report["zero_shot"][slot]
        prior = f", text prior {r['prior_top1']:5.1%}" if r["prior_top1"] is not None else ""
        lines.append(f"  zero-shot {slot:<6} top-1 {r['top1']:6.1%} (chance {r['chance_top1']:5.1%}{prior})"
                     f"   top-5 {r['top5']:6.1%} (chance {r['chance_top5']:5.1%}); {report['zero_shot']['method']}")
    a = report["alignment"]
    lines.append(f"  alignment        accuracy {a['accuracy']:6.1%} (chance {a['chance']:.0%}) over {a['pairs']} text-video pairs")
    r, t2v = report["retrieval"], report["retrieval"]["text_to_video"]
    lines.append(f"  retrieval        text->video R@1 {t2v['R@1']:6.1%} (chance {t2v['chance_R@1']:5.1%}) R@5 {t2v['R@5']:6.1%} "
                 f"R@10 {t2v['R@10']:6.1%} MedR {t2v['MedR']:g}; {r['sentences']} {r['text']} sentences, "
                 f"{r['segments']} segments ({r['mode']})")
    c = report["captioning"]
    variants = ("s3d", family, f"{family}+s3d")
    lines.append("  captioning       CIDEr " + ", ".join(f"{v} {c[v]['CIDEr']:.3f}" for v in variants)
                 + f" (most common caption {c['most_common_caption']['CIDEr']:.3f}); BLEU-4 "
                 + " / ".join(f"{c[v]['BLEU-4']:.3f}" for v in variants)
                 + f"; median of {len(c['seeds'])} seed(s), {c['segments']['eval']} held-out segments")
    times = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in report["stage_seconds"].items())
    lines.append(f"  stage times: {times}; total {report['total_seconds']:.0f}s"
                 + (f" (resumed: {', '.join(report['resumed_stages'])})" if report["resumed_stages"] else ""))
    lines.append(f"  outputs in {out_dir}: report.json, {report['outputs']['model']}/, {report['outputs']['tensorboard']}/, "
                 f"{report['outputs']['loss_curves']}, {report['outputs']['zero_shot']}, {report['outputs']['all_words']}")
    return "\n".join(lines)
