"""`anymole-usd eval`: score in-between frames against ground truth.

Two forms:
  anymole-usd eval result.usda --reference truth.usda [--json]
  anymole-usd eval --benchmark DIR_OR_FILE ... --protocol anymole|lafan1 [--priors a,b,c] [--json]

Lengths are in metres: the result stage's metersPerUnit (a reference in other
units is converted; one of another size is refused), BVH clips in the unit
`anymole-usd import` guesses for them, glTF in metres; `l2p-norm` is
size-normalised. The benchmark shows each clip and window as it runs
(progress on stderr) and, unless `-v`, one summary line of the gaps a prior
filled by interpolation instead of a warning per gap.
"""
from __future__ import annotations

import contextlib
import logging

import click

from anymole_usd.cli.common import emit_json, handle_errors, progress, verbose

PROTOCOL_HELP = ("Windows cut from each clip: anymole = 2 s context, keys every 1 s up to 8 s (AnyMoLe); "
                 "lafan1 = 10 context frames, one key after 5/15/30/45 frames (LaFAN1).")


@click.command(name="eval")
@click.argument("result", required=False, type=click.Path(dir_okay=False))
@click.option("--reference", type=click.Path(dir_okay=False), help="Ground-truth stage to compare RESULT with.")
@click.option("--prim", default=None, help="Only this SkelAnimation (or Skeleton) of RESULT.")
@click.option("--benchmark", "benchmark", multiple=True, type=click.Path(exists=True),
              help="Run priors over real clips (folders or BVH/USD/glTF files; repeatable) instead.")
@click.option("--protocol", type=click.Choice(["anymole", "lafan1"]), default="anymole", show_default=True,
              help=PROTOCOL_HELP)
@click.option("--priors", default="zero-velocity,interp,graph", show_default=True,
              help="Comma-separated priors to run on identical windows.")
@click.option("--references", type=click.Choice(["none", "others"]), default="none", show_default=True,
              help="Reference motion for the graph prior: none (data-free) or the other clips on the same skeleton.")
@click.option("--metrics", default=None, help="Comma-separated metrics (default: all installed).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def command(result, reference, prim, benchmark, protocol, priors, references, metrics, as_json):
    """Compare in-between frames of RESULT with a reference, or run the in-betweening benchmark."""
    from anymole_usd.metric import load_metrics

    chosen = load_metrics([m.strip() for m in metrics.split(",") if m.strip()] if metrics else None)
    names = [m.name for m in chosen]
    if benchmark:
        if result or reference:
            raise click.UsageError("give either RESULT --reference TRUTH or --benchmark, not both")
        _benchmark(benchmark, protocol, priors, references, chosen, names, as_json)
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
        if r.reference_scale != 1.0:
            click.echo(f"  reference lengths x{r.reference_scale:g} (its metersPerUnit to the result's "
                       f"{r.meters_per_unit:g})")
        for m in chosen:
            value = r.values[m.name]
            click.echo(f"  {m.name:<13} {value:.5g} {m.unit}".rstrip())


def _benchmark(paths, protocol, priors, references, chosen, names, as_json) -> None:
    from anymole_usd import evaluation
    from anymole_usd.errors import InputError
    from anymole_usd.protocols import load_clips

    prior_names = [p.strip() for p in priors.split(",") if p.strip()]
    with _prior_warnings(shown=verbose()), progress(enabled=not as_json) as bar:
        task = bar.add_task("loading clips", total=1.0)
        clips = load_clips(list(paths))
        if not clips:
            raise InputError("no BVH file, glTF animation or dense SkelAnimation found", file=", ".join(paths))
        scores = evaluation.run_benchmark(
            clips, prior_names, protocol, chosen, references=references,
            progress=lambda message, fraction: bar.update(task, description=message, completed=fraction))
    if as_json:
        emit_json({"protocol": protocol, "references": references, "scores": [s.to_dict() for s in scores]})
        return
    if not verbose():
        for line in evaluation.fallback_summary(scores):
            click.echo(f"{line} (-v lists every gap)", err=True)
    for group in sorted({s.group for s in scores}):
        click.echo(f"\n{protocol}, {group} (mean over clips; l2p in metres, l2p-norm in character sizes):\n")
        click.echo(evaluation.markdown_table(evaluation.aggregate(scores, lambda s, g=group: s.group == g),
                                             names, prior_names))


@contextlib.contextmanager
def _prior_warnings(shown: bool):
    """Without -v, the priors' per-gap fallback warnings are held back (the benchmark summarises them)."""
    logger = logging.getLogger("anymole_usd.priors")
    before = logger.level
    if not shown:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)
