"""`anymole-usd retarget`: play any character's motion on another skeleton, composed over the target as a layer."""
from __future__ import annotations

import click

from .common import check_fps, emit_json, handle_errors, progress


@click.command("retarget")
@click.argument("source", required=False, type=click.Path(dir_okay=False))
@click.option("--to", "target", type=click.Path(dir_okay=False), metavar="TARGET",
              help="USD stage with the Skeleton to animate (animated or not, skinned or not).")
@click.option("--map", "map_file", type=click.Path(dir_okay=False), metavar="MAP.json",
              help='Joint correspondences overriding the automatic ones: {"source joint": "target joint" or null}.')
@click.option("--source-prim", help="USD source: the Skeleton (or its SkelRoot or animation) to read.")
@click.option("--target-prim", help="The target Skeleton (or its SkelRoot) when the stage has several.")
@click.option("--animation", metavar="NAME", help="glTF/GLB source: which animation; USD: a SkelAnimation by name.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Result layer (default: TARGET.retarget.usda beside the target).")
@click.option("--force", is_flag=True, help="Let -o replace an existing file that is not this target's result.")
@click.option("--in-place", is_flag=True,
              help="Write the samples into the layer holding the target's own animation (kept for --undo).")
@click.option("--fps", type=float, help="Samples per second (default: one per time code of the target).")
@click.option("--show-map", is_flag=True, help="Print the joint mapping with a confidence per chain; write nothing.")
@click.option("--undo", is_flag=True, help="Remove earlier results from TARGET, restoring its files byte for byte.")
@click.option("--keep-result", is_flag=True, help="With --undo: keep the result layer file.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@handle_errors
def command(source, target, map_file, source_prim, target_prim, animation, output, force, in_place, fps, show_map,
            undo, keep_result, as_json):
    """Retarget the motion of SOURCE (USD with a bound SkelAnimation, BVH, glTF/GLB) onto the Skeleton of
    TARGET: joints matched by name conventions, else by topology and rest geometry; chains scaled part by
    part; the target's rotations solved (Warp FK + joint loss) with contacts held. The result is a new
    SkelAnimation bound to the target skeleton, in a layer composed over TARGET (undo with --undo).

    \b
      anymole-usd retarget walk.bvh --to character.usda --show-map
      anymole-usd retarget walk.bvh --to character.usda [--map fixes.json]
      anymole-usd retarget --undo --to character.usda
    """
    from anymole_usd.errors import InputError

    from .inbetween import check_write_options

    check_write_options(undo, in_place, output, keep_result)
    if undo:
        shot = target or source
        if not shot:
            raise InputError("--undo needs the target: anymole-usd retarget --undo --to TARGET")
        from .inbetween import _undo

        _undo(shot, output, keep_result, as_json, command="retarget")
        return
    if not source:
        raise InputError("missing SOURCE (a USD, BVH or glTF file with the motion to retarget)")
    if not target:
        raise InputError("missing --to TARGET (the USD stage whose Skeleton plays the motion)")
    check_fps(fps)
    from anymole_usd.plugins.retarget.runner import RetargetOptions, run_retarget, show_map as mapping_only

    options = RetargetOptions(source=source, target=target, map_file=map_file, source_prim=source_prim,
                              target_prim=target_prim, animation=animation, output=output, in_place=in_place,
                              force=force, fps=fps)
    if show_map:
        report = mapping_only(options)
        if as_json:
            emit_json(report)
        else:
            _print_map(report)
        return
    with progress(enabled=not as_json) as bar:
        task = bar.add_task("retargeting", total=1.0)
        report = run_retarget(options, lambda message, fraction: bar.update(task, completed=fraction,
                                                                               description=message))
    if as_json:
        emit_json(report)
        return
    q, s = report["quality"], report["solve"]
    click.echo(f"{report['source']} -> {report['skeleton']}: {report['frames']} samples, time codes "
               f"{report['start']:g}..{report['end']:g} at {report['time_codes_per_second']:g}/s")
    for chain in report["mapping"]["chains"]:
        click.echo(f"  {chain['chain']:<18} confidence {chain['confidence']:.2f} ({chain['method']}, "
                   f"{len(chain['joints'])} joints)")
    contact = f"contact F1 {q['contact_f1']:.2f}, " if "contact_f1" in q else ""
    click.echo(f"solved in {s['iterations']} iterations ({s['seconds']:.1f} s): {contact}"
               f"root scale {report['root_scale']:.3g}")
    from anymole_usd.writing import describe_mode

    for a in report["animations"]:
        click.echo(f"{a['result_prim']} ({describe_mode(a['mode'])})")
    for note in report.get("notes", []):
        click.echo(f"note: {note}")
    out = report["output"]
    click.echo(f"wrote {', '.join(out) if isinstance(out, list) else out}")
    if report.get("wrapper"):
        click.echo("the target is read-only (usdz or permissions): open the output, which layers the result over it")


def _print_map(report: dict) -> None:
    click.echo(f"{report['source']} -> {report['target']} ({report['target_skeleton']})")
    for chain in report["chains"]:
        click.echo(f"{chain['chain']}: confidence {chain['confidence']:.2f} ({chain['method']})")
        for s, t in chain["joints"].items():  # --json prints full joint paths (usable in a --map file)
            click.echo(f"    {s.rsplit('/', 1)[-1]} -> {t.rsplit('/', 1)[-1]}")
    if report["unmapped_target"]:
        click.echo(f"target joints without a counterpart (they keep their pose): {len(report['unmapped_target'])}")
    for note in report["notes"]:
        click.echo(f"note: {note}")
