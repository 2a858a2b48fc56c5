"""`anymole-usd eval`: score in-between frames against ground truth.

Two forms:
  anymole-usd eval result.usda --reference truth.usda [--json]
  anymole-usd eval --benchmark DIR_OR_FILE ... --protocol anymole|lafan1 [--priors a,b,c] [--json]
"""
from __future__ import annotations

import click

from anymole_usd.cli.common import emit_json, handle_errors


@click.command(name="eval")
@click.argument("result", required=False, type=click.Path(dir_okay=False))
@click.option("--reference", type=click.Path(dir_okay=False), help="Ground-truth stage to compare RESULT with.")
@click.option("--prim", default=None, help="Only this SkelAnimation (or Skeleton) of RESULT.")
@click.option("--benchmark", "benchmark", multiple=True, type=click.Path(exists=True),
              help="Run priors over real clips (folders or BVH/USD files; repeatable) instead.")
@click.option("--protocol", type=click.Choice(["anymole", "lafan1"]), default="anymole", show_default=True,
              help="With --benchmark, how clips are cut into windows: anymole = 2 s of context, then a keyframe "
                   "every 1 s up to 8 s; lafan1 = 10 context frames, one keyframe after 5, 15, 30 or 45 frames, "
                   "65-frame windows every 40 frames.")
@click.option("--priors", default="zero-velocity,interp,graph", show_default=True,
              help="Comma-separated priors to run on identical windows.")
@click.option("--references", type=click.Choice(["none", "others"]), default="none", show_default=True,
              help="Reference motion for the graph prior: none (data-free) or the other clips on the same skeleton.")
@click.option("--metrics", default=None, help="Comma-separated metrics (default: all installed).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def command(result, reference, prim, benchmark, protocol, priors, references, metrics, as_json):
    """Compare in-between frames of RESULT with a reference, or run the in-betweening benchmark."""
    from anymole_usd.errors import InputError
    from anymole_usd.metric import load_metrics

    chosen = load_metrics([m.strip() for m in metrics.split(",") if m.strip()] if metrics else None)
    names = [m.name for m in chosen]
    if benchmark:
        if result or reference:
            raise click.UsageError("give either RESULT --reference TRUTH or --benchmark, not both")
        from anymole_usd import evaluation
        from anymole_usd.protocols import load_clips

        clips = load_clips(list(benchmark))
        if not clips:
            raise InputError("no BVH file or dense SkelAnimation found", file=", ".join(benchmark))
        prior_names = [p.strip() for p in priors.split(",") if p.strip()]
        scores = evaluation.run_benchmark(clips, prior_names, protocol, chosen, references=references)
        if as_json:
            emit_json({"protocol": protocol, "references": references, "scores": [s.to_dict() for s in scores]})
            return
        for group in sorted({s.group for s in scores}):
            click.echo(f"\n{protocol}, {group} (mean over clips):\n")
            click.echo(evaluation.markdown_table(evaluation.aggregate(scores, lambda s, g=group: s.group == g),
                                                 names, prior_names))
        return
    if not result or not reference:
        raise click.UsageError("give RESULT and --reference TRUTH (or --benchmark DIR)")
    from anymole_usd.evaluation import evaluate_result

    rows = evaluate_result(result, reference, prim=prim, metrics=chosen)
    if as_json:
        emit_json({"result": result, "reference": reference, "animations": [r.to_dict() for r in rows]})
        return
    for r in rows:
        click.echo(f"{r.prim}: {r.generated_frames} generated frames in {r.gaps} gap(s)")
        for m in chosen:
            value = r.values[m.name]
            click.echo(f"  {m.name:<13} {value:.5g} {m.unit}".rstrip())
