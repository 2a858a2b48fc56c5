"""anymole-usd render: multi-view images of the composed animation plus joint annotations."""
from __future__ import annotations

import click
from anymole_usd.cli.common import check_output_writable, emit_json, handle_errors, progress


@click.command("render")
@click.argument("file", type=click.Path())
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(),
              help="Output folder (created; earlier renders of the same views are replaced).")
@click.option("--views", default=None, help="Comma-separated views: front,left,right,back (default all four).")
@click.option("--size", "size_text", default="256x256", show_default=True,
              help="Image size HEIGHTxWIDTH in pixels (the paper's videos are 320x512).")
@click.option("--frames", "frames_text", default=None, help="Timecode range A:B (default: the whole animation).")
@click.option("--format", "fmt", type=click.Choice(["png", "mp4"]), default="png", show_default=True,
              help="PNG sequence per view, or one MP4 per view (needs imageio-ffmpeg).")
@click.option("--names", type=click.Choice(["time", "index"]), default="time", show_default=True,
              help="PNG file names: by time code (0036.png, what --video-dir and `estimator predict` read) or by "
                   "index (frame_0000.png; annotations.json gives each frame's time).")
@click.option("--follow", is_flag=True, help="Cameras follow the character instead of framing the whole clip.")
@click.option("--camera", "cameras", multiple=True,
              help="Render from a UsdGeom.Camera prim path too (repeatable); alone unless --views is given.")
@click.option("--skeleton", default=None, help="Skeleton prim path when the stage holds several.")
@click.option("--proxies", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Draw bone proxies: when there is no skinned mesh (auto), always, or never.")
@click.option("--no-ground", is_flag=True, help="No ground plane.")
@click.option("--device", default=None, help="Warp device (cpu, cuda:0); default: CUDA when present.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@handle_errors
def command(file, out_dir, views, size_text, frames_text, fmt, names, follow, cameras, skeleton, proxies, no_ground,
            device, as_json):
    """Render FILE's composed animation from several views into OUTPUT.

    \b
    Writes per view a PNG sequence named by time code (OUTPUT/<view>/0036.png,
    0036.5.png ...; --names index: frame_0000.png ...) or an MP4, and
    OUTPUT/annotations.json + annotations.npz holding, per frame and view,
    every joint's pixel position, camera and NDC depth, a visibility flag,
    and the cameras' intrinsics and extrinsics (OpenCV axes, metres).
    These cameras frame the whole animation: for frames that `inbetween
    --video-dir` reads, use `anymole-usd video prepare` (the shot's cameras).
    """
    from anymole_usd.plugins.render.render_job import render_file
    from anymole_usd.plugins.render.scene import parse_frames
    from anymole_usd.plugins.render.views import parse_size

    from anymole_usd.errors import InputError

    try:
        size = parse_size(size_text)
    except ValueError as exc:
        raise InputError(f"--size: {exc}") from None
    frames = parse_frames(frames_text)
    check_output_writable(out_dir, folder=True)
    state = {}

    def report(done, total):
        # The bar starts with the first rendered chunk: bad input fails before it, on one line.
        if "bar" not in state:
            state["bar"] = progress(enabled=not as_json)
            state["bar"].start()
            state["task"] = state["bar"].add_task("rendering", total=total)
        state["bar"].update(state["task"], completed=done, total=total)

    try:
        summary = render_file(file, out_dir, views=views, size=size, frames=frames, fmt=fmt, follow=follow,
                              camera_paths=list(cameras), skeleton=skeleton, proxies=proxies,
                              ground=not no_ground, device=device, progress=report, names=names)
    finally:
        if "bar" in state:
            state["bar"].stop()
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"rendered {summary['frames']} frames x {len(summary['views'])} views "
                   f"({', '.join(summary['views'])}) at {size[0]}x{size[1]} into {summary['output']} "
                   f"in {summary['seconds']:.1f} s")
