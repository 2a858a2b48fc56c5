"""`anymole-usd info`: skeletons, bound animations, and what `inbetween` would do."""
from __future__ import annotations

import click

from .common import check_fps, emit_json, handle_errors


def describe(shot: str, context=None, keys=None, fps=None) -> dict:
    """Everything `info` prints, as a dict (also used by --json)."""
    from anymole_usd import transaction
    from anymole_usd.pipeline import InbetweenOptions, plan
    from anymole_usd.reading import authored_times, find_bindings, open_stage
    from anymole_usd.schema import read_provenance
    from pxr import Usd, UsdGeom, UsdSkel

    stage = open_stage(shot)
    out = {
        "file": shot,
        "time_codes_per_second": stage.GetTimeCodesPerSecond(),
        "frames_per_second": stage.GetFramesPerSecond(),
        "up_axis": str(UsdGeom.GetStageUpAxis(stage)),
        "meters_per_unit": UsdGeom.GetStageMetersPerUnit(stage),
        "skeletons": [],
        "animations": [],
    }
    bindings = find_bindings(stage, shot)
    composed = {}
    for b in bindings:
        prov = read_provenance(stage.GetPrimAtPath(b.animation_path)) if b.animation_path else None
        composed[b.skeleton_path] = (b.animation_path, prov.to_dict() if prov else None)
    for prim in stage.Traverse(Usd.TraverseInstanceProxies()):
        if prim.IsA(UsdSkel.Animation):
            t = authored_times(prim)
            joints = UsdSkel.Animation(prim).GetJointsAttr().Get() or []
            out["animations"].append({"prim": str(prim.GetPath()), "joints": len(joints), "samples": int(len(t)),
                                      "range": [float(t[0]), float(t[-1])] if len(t) else None})
    # Detection runs on the user's own files, as `inbetween` sees them (in memory; nothing is written).
    bases, record = transaction.user_bases(shot)
    shown = transaction.show_in_memory(bases)
    if record is not None:
        out["journal"] = {"state": record.state, "command": record.command,
                          "files": [{"path": r.path, "created": r.created} for r in record.files]}
    opts = InbetweenOptions(context=context, keys=keys, fps=fps)
    jobs = {}
    if any(b.animation_path for b in find_bindings(stage, shot)):
        try:
            _, planned = plan(shot, opts, stage)
            jobs = {j.anim_path: j for j in planned}
        except Exception as exc:  # report, but still list what is there
            from anymole_usd.errors import InputError

            if not isinstance(exc, InputError):
                raise
            out["error"] = str(exc)
    for b in find_bindings(stage, shot):
        entry = {"skeleton": b.skeleton_path, "joints": b.skeleton.num_joints, "skel_root": b.skel_root_path,
                 "animation": b.animation_path, "fps": b.fps}
        composed_anim, prov = composed.get(b.skeleton_path, (None, None))
        if composed_anim and composed_anim != b.animation_path:
            entry["composed_animation"] = composed_anim
        job = jobs.get(b.animation_path)
        if job is not None:
            entry.update(job.timeline.to_dict())
        entry["provenance"] = prov
        entry["filled"] = prov is not None
        out["skeletons"].append(entry)
    for layer in shown:  # back to the files' own content for anything else in this process
        layer.Reload(force=True)
    return out


def _print(info: dict) -> None:
    click.echo(f"{info['file']}")
    click.echo(f"  {info['time_codes_per_second']:g} timecodes/s, up {info['up_axis']}, "
               f"{info['meters_per_unit']:g} m/unit")
    if not info["skeletons"]:
        click.echo("  no skeletons")
    for s in info["skeletons"]:
        click.echo(f"  Skeleton {s['skeleton']} ({s['joints']} joints)")
        if not s["animation"]:
            click.echo("    no bound SkelAnimation (rest pose only)")
            continue
        click.echo(f"    animation {s['animation']}" + (f" (composed: {s['composed_animation']})"
                                                        if s.get("composed_animation") else ""))
        if "authored_range" in s:
            a, b = s["authored_range"]
            click.echo(f"    authored {s['authored_samples']} samples, {a:g}..{b:g} @ {s['fps']:g} fps")
            c0, c1 = s["context"]
            click.echo(f"    context {c0:g}:{c1:g} ({s['context_samples']} samples)"
                       + ("" if s["detected"] else " [explicit]"))
            click.echo(f"    keys {', '.join(f'{k:g}' for k in s['keys']) or '(none)'}")
            gaps = ", ".join(f"{g['start']:g}..{g['end']:g} ({g['frames']})" for g in s["gaps"])
            if s.get("filled") and gaps:
                click.echo(f"    gaps: {gaps} -> {s['frames_to_fill']} frames, filled by the result below "
                           "(`inbetween` again would replace it)")
            else:
                click.echo(f"    gaps to fill: {gaps or 'none'} -> {s['frames_to_fill']} frames")
        p = s.get("provenance")
        if p:
            from anymole_usd.writing import describe_mode

            click.echo(f"    result: prior {p['prior']}, {describe_mode(p['mode'])}, {p['generated_frames']} generated frames, "
                       f"anymole-usd {p['tool_version']}, from {p['source_layer']} {p['source_prim']}")
            from anymole_usd.schema import gap_source_lines, retrieval_offered

            details = p.get("details") or {}
            offered = retrieval_offered(details)
            if offered:
                click.echo(f"    retrieval from {offered}:")
                for line in gap_source_lines(details):
                    click.echo(f"      {line}")
    if len(info["animations"]) > 1:
        click.echo("  SkelAnimations in the stage:")
        for a in info["animations"]:
            rng = f"{a['range'][0]:g}..{a['range'][1]:g}" if a["range"] else "no samples"
            click.echo(f"    {a['prim']} ({a['joints']} joints, {a['samples']} samples, {rng})")
    journal = info.get("journal")
    if journal and journal["state"] != "committed":
        click.echo("  an interrupted anymole-usd run left a record: the next `inbetween` or `--undo` cleans it up")


@click.command("info")
@click.argument("shot", type=click.Path(dir_okay=False))
@click.option("--context", "context", metavar="A:B", help="Override the detected context range.")
@click.option("--keys", metavar="T1,T2,...", help="Override the detected keyframes.")
@click.option("--fps", type=float, metavar="RATE",
              help="Sampling rate of generated frames, per second (default: one per time code, i.e. the "
                   "stage's timeCodesPerSecond).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def command(shot, context, keys, fps, as_json):
    """List skeletons, their bound SkelAnimation, fps, authored range, and the
    context range and keyframes that `inbetween` would use."""
    from .inbetween import parse_timeline_options

    check_fps(fps)
    ctx, ks = parse_timeline_options(context, keys)
    info = describe(shot, ctx, ks, fps)
    if as_json:
        emit_json(info)
    else:
        _print(info)
    if info.get("error"):
        # What could be listed was listed; the reason goes to stderr as every command's error does.
        click.echo(f"error: {info['error']}", err=True)
        raise SystemExit(2)
