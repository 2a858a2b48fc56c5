"""`anymole-usd compose`: new animation from a motion library (Video Motion Graphs synthesis)."""
from __future__ import annotations

import click

from .common import check_output_writable, emit_json, handle_errors, progress


@click.command("compose")
@click.argument("library", type=click.Path(file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="New USD stage to write (.usda, .usdc or .usd).")
@click.option("--duration", required=True, type=float, help="Length of the animation, seconds.")
@click.option("--skeleton", help="Library skeleton (name, key, or a file/clip on it; default: the one with "
                                 "the most motion carrying the requested tags).")
@click.option("--tags", metavar="TAG:A-B,...", help='Tag spans in seconds, e.g. "walk:0-6,run:6-12".')
@click.option("--keys", "keys", type=click.Path(dir_okay=False),
              help="A shot whose authored samples are keyframes (poses at their times).")
@click.option("--music", type=click.Path(dir_okay=False), help="Audio file: kinematic beats follow its beats.")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True,
              help="Seed for variations.")
@click.option("--fps", type=float, help="Output rate (default: the library skeleton's most common rate).")
@click.option("--transition-prior", help="In-betweening prior that re-fills each transition (e.g. interp, graph).")
@click.option("--force", is_flag=True, help="Overwrite an existing file that is not an earlier compose output.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@handle_errors
def command(library, output, duration, skeleton, tags, keys, music, seed, fps, transition_prior, force, as_json):
    """Compose DURATION seconds of new animation from LIBRARY: a path through the
    library's motion graph honouring tag spans, keyframes and music beats,
    transitions blended, written as a new UsdSkel stage.

    \b
    Examples:
      anymole-usd compose lib/ -o walk.usda --duration 20 --tags walk
      anymole-usd compose lib/ -o mix.usda --duration 12 --tags "walk:0-6,run:6-12"
      anymole-usd compose lib/ -o dance.usda --duration 30 --music song.wav --seed 3
    """
    from anymole_usd.library.compose import ComposeRequest, compose
    from anymole_usd.library.output import check_output, write_composition

    check_output_writable(output)
    check_output(output, force)  # before any work
    request = ComposeRequest(library=library, duration=duration, skeleton=skeleton, tags=tags, keys=keys,
                             music=music, seed=seed, fps=fps, transition_prior=transition_prior)
    with progress(enabled=not as_json) as bar:
        task = bar.add_task("composing", total=1.0)
        comp = compose(request, progress=lambda msg, frac: bar.update(task, completed=frac, description=msg))
        write_composition(comp, output, request, force=force)
    if as_json:
        emit_json({"output": output, "fps": comp.fps, "frames": comp.motion.num_frames,
                   "skeleton": comp.skeleton_name, "segments": comp.segments, "notes": comp.notes})
        return
    click.echo(f"wrote {output}: {duration:g} s at {comp.fps:g} fps ({comp.motion.num_frames} frames) on skeleton "
               f"{comp.skeleton_name}, {len(comp.segments)} segments")
    for s in comp.segments:
        tags_text = f" [{', '.join(s['tags'])}]" if s["tags"] else ""
        click.echo(f"  {s['output'][0]:7.2f}-{s['output'][1]:7.2f} s  {s['clip']} "
                   f"{s['source'][0]:.2f}-{s['source'][1]:.2f} s{tags_text}")
    for note in comp.notes:
        click.echo(f"  note: {note}")
