"""``report.json`` and the short text the demo prints at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from videobert.demo.pipeline import DemoPipeline


def build_report(pipeline: "DemoPipeline", outcomes: dict[str, dict[str, Any]], total_seconds: float) -> dict[str, Any]:
    """Accuracies beside chance, what was made, and each stage's wall time (seconds; a stage
    resumed from an earlier run keeps the time it took then)."""
    evaluation = outcomes["evaluate"]["result"]
    zero_shot = {slot: {k: round(float(v), 4) for k, v in evaluation[slot].items()} for slot in ("verb", "object")}
    alignment = evaluation["alignment"]
    return {
        "size": pipeline.config.size,
        "seed": pipeline.config.seed,
        "zero_shot": {**zero_shot, "segments": evaluation["segments"], "skipped": evaluation["skipped"]},
        "alignment": {"accuracy": round(alignment["accuracy"], 4), "chance": alignment["chance"], "pairs": alignment["pairs"],
                      "positive_accuracy": round(alignment["positive_accuracy"], 4),
                      "negative_accuracy": round(alignment["negative_accuracy"], 4)},
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
            **outcomes["pictures"]["result"],
        },
    }


def format_report(report: dict[str, Any], out_dir: str) -> str:
    """A few lines for the terminal."""
    lines = [f"videobert demo ({report['size']}, seed {report['seed']}): held-out results on "
             f"{report['zero_shot']['segments']} annotated segments"]
    for slot in ("verb", "object"):
        r = report["zero_shot"][slot]
        lines.append(f"  zero-shot {slot:<6} top-1 {r['top1']:6.1%} (chance {r['chance_top1']:5.1%}, text prior {r['prior_top1']:5.1%})"
                     f"   top-5 {r['top5']:6.1%} (chance {r['chance_top5']:5.1%})")
    a = report["alignment"]
    lines.append(f"  alignment        accuracy {a['accuracy']:6.1%} (chance {a['chance']:.0%}) over {a['pairs']} text-video pairs")
    times = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in report["stage_seconds"].items())
    lines.append(f"  stage times: {times}; total {report['total_seconds']:.0f}s"
                 + (f" (resumed: {', '.join(report['resumed_stages'])})" if report["resumed_stages"] else ""))
    lines.append(f"  outputs in {out_dir}: report.json, {report['outputs']['model']}/, {report['outputs']['tensorboard']}/, "
                 f"{report['outputs']['loss_curves']}, {report['outputs']['zero_shot']}, {report['outputs']['all_words']}")
    return "\n".join(lines)
