"""`anymole-usd report`: one self-contained HTML file per shot (clips, curves, metrics, provenance), its structure,
its numbers (the same as `eval`, compared priors the same as `inbetween` writes them), and bad input."""
import base64
import json
import re

import numpy as np
import pytest
from anymole_usd.cli.main import cli
from click.testing import CliRunner

WALK = ("bvh", "humanoid", "bandai_namco", "dataset-1_walk_normal_001.bvh")


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def filled(tmp_path_factory, data_dir):
    """A CesiumMan shot (context 1-24, keys 36 and 48) filled by interp, and its dense ground truth."""
    from shots import shot_root

    root = tmp_path_factory.mktemp("report")
    (root / "truth").mkdir()
    truth = shot_root(root / "truth", data_dir, times=range(1, 49))
    shot = shot_root(root, data_dir)
    assert run("inbetween", shot, "--prior", "interp").exit_code == 0
    return shot, truth


@pytest.fixture(scope="module")
def report(filled):
    shot, truth = filled
    out = shot.parent / "review.html"
    r = run("report", shot, "--reference", truth, "--compare", "zero-velocity", "-o", out, "--size", "64x48",
            "--margin", "0.25", "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output), out.read_text(encoding="utf-8")


def _data_uris(html: str) -> list[tuple[str, bytes]]:
    return [(m.group(1), base64.b64decode(m.group(2)))
            for m in re.finditer(r'(?:src|poster)="data:([\w/+.-]+);base64,([A-Za-z0-9+/=]+)"', html)]


def test_report_is_self_contained(report):
    summary, html = report
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    # Nothing to fetch: every src/poster/href is inline or an in-page anchor; no script, no stylesheet link.
    for attr, value in re.findall(r'\b(src|poster|href)="([^"]*)"', html):
        assert value.startswith("data:") or (attr == "href" and value.startswith("#")), (attr, value[:60])
    assert "<script" not in html and "<link" not in html and "url(" not in html
    assert not re.search(r"https?://", html)
    assert summary["bytes"] == len(html.encode("utf-8"))


def test_report_gaps_have_labelled_clips(report):
    summary, html = report
    assert summary["panels"] == ["result (interp)", "zero-velocity", "reference"]
    assert [(g["start"], g["end"], g["generated"]) for g in summary["gaps"]] == [(24, 36, 11), (36, 48, 11)]
    sections = re.findall(r'<section class="gap" id="gap-(\d)".*?</section>', html, re.S)
    assert sections == ["1", "2"]
    for number in ("1", "2"):
        body = re.search(rf'<section class="gap" id="gap-{number}".*?</section>', html, re.S).group(0)
        labels = re.findall(r'<span class="panel-label"[^>]*>([^<]*)</span>', body)
        assert labels == ["result (interp)", "zero-velocity", "reference"]
        assert "<video" in body or '<img class="clip"' in body
        assert body.count('class="plot"') == 2  # the timeline strip and the curves around the gap


def test_report_clips_play_the_gap_side_by_side(report, filled):
    """Each clip holds every frame from 0.25 s before the gap to 0.25 s after, three 48 px panels wide."""
    import imageio.v3 as iio

    summary, html = report
    videos = [(mime, data) for mime, data in _data_uris(html) if mime.startswith("video/") or mime in
              ("image/webp", "image/gif")]
    assert len(videos) == 2
    mime, data = videos[0]
    ext = {"video/mp4": ".mp4", "image/webp": ".webp", "image/gif": ".gif"}[mime]
    path = filled[0].parent / f"clip{ext}"
    path.write_bytes(data)
    frames = iio.imread(path, index=None) if ext != ".mp4" else iio.imread(path, plugin="pyav") \
        if _has_pyav() else np.stack(list(_ffmpeg_frames(path)))
    # gap 1 is 24..36 at 24 fps; 0.25 s = 6 frames each side -> 18..42
    assert len(frames) == 42 - 18 + 1
    assert frames.shape[2] == 3 * 48 + 2 * 4
    assert frames.shape[1] == 64
    assert frames.reshape(len(frames), -1).std(axis=1).min() > 10  # drawn, not blank


def _has_pyav() -> bool:
    import importlib.util

    return importlib.util.find_spec("av") is not None


def _ffmpeg_frames(path):
    import imageio.v2 as iio2

    with iio2.get_reader(str(path), format="FFMPEG") as reader:
        yield from reader


def test_report_metrics_match_eval(report, filled):
    """The result's row is what `eval` computes; every metric has a column in the tables."""
    from anymole_usd.evaluation import evaluate_result

    summary, html = report
    shot, truth = filled
    (row,) = evaluate_result(str(shot), str(truth))
    ours = summary["metrics"]["overall"]["result (interp)"]
    for name, value in row.values.items():
        assert ours[name] == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), name
    tables = re.findall(r'<table class="metrics">.*?</table>', html, re.S)
    assert len(tables) == 3  # overall + one per gap
    for name in ("l2q", "hl2q", "l2p", "l2p-norm", "npss", "foot-skate", "key-jump"):
        assert "<th title=" in tables[0] and f">{name}<br>" in tables[0], name
    assert ">m</small>" in tables[0]  # L2P in metres
    # zero-velocity ignores the keyframe after each gap: it jumps there, interp does not
    zv = summary["metrics"]["overall"]["zero-velocity"]
    assert zv["key-jump"] > ours["key-jump"]
    assert zv["l2p"] > ours["l2p"]


def test_report_provenance(report):
    _, html = report
    prov = re.search(r'<section id="provenance">.*?</section>', html, re.S).group(0)
    for text in ("<dt>prior</dt><dd>interp</dd>", "<dt>context</dt><dd>1:24</dd>", "<dt>keyframes</dt><dd>36, 48</dd>",
                 "library clips used", "result layer", "shot.inbetween.usda", "anymole-usd 0.1.0",
                 "compared priors", "zero-velocity"):
        assert text in prov, text


def test_compare_runs_what_inbetween_writes(filled, tmp_path, data_dir):
    """A prior compared in memory fills exactly what `inbetween --prior` writes for the same shot."""
    from anymole_usd.plugins.render.preview import preview_panels
    from anymole_usd.plugins.render.scene import load_scene
    from shots import shot_root

    shot, _ = filled
    other = shot_root(tmp_path, data_dir)
    assert run("inbetween", other, "--prior", "zero-velocity").exit_code == 0
    written = load_scene(other).motion
    inputs = preview_panels(str(shot), compare=["zero-velocity"])
    (run_,) = inputs.runs
    assert run_.error is None and run_.motion is not None
    assert np.allclose(run_.motion.times, written.times)
    assert np.allclose(np.abs(np.sum(run_.motion.rotations * written.rotations, -1)), 1.0, atol=1e-5)
    assert np.allclose(run_.motion.translations, written.translations, atol=1e-5)
    # and it is not simply the result (interp) again
    assert not np.allclose(inputs.scene.motion.translations, written.translations, atol=1e-4)


def test_report_without_reference_has_no_metrics(filled):
    shot, _ = filled
    r = run("report", shot, "--size", "48x40", "--margin", "0", "--video", "gif", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["output"] == str(shot.parent / "shot.report.html")
    assert summary["video"] == "gif" and summary["panels"] == ["result (interp)"]
    html = (shot.parent / "shot.report.html").read_text(encoding="utf-8")
    assert '<table class="metrics">' not in html and "--reference TRUTH" in html
    assert [m for m, _ in _data_uris(html)].count("image/gif") == 2


def test_report_bad_input(filled, tmp_path, data_dir):
    shot, truth = filled
    # a shot with no in-between result composed
    r = run("report", truth, "-o", tmp_path / "x.html")
    assert r.exit_code == 2 and "no in-between result is composed" in r.output
    assert not (tmp_path / "x.html").exists()
    r = run("report", shot, "--compare", "nonesuch", "-o", tmp_path / "x.html")
    assert r.exit_code == 2 and "nonesuch" in r.output and "interp" in r.output
    r = run("report", shot, "-o", tmp_path / "x.pdf")
    assert r.exit_code == 2 and ".html" in r.output
    r = run("report", tmp_path / "missing.usda")
    assert r.exit_code == 2 and "no such file" in r.output
    # a reference on another skeleton cannot be scored
    r = run("report", shot, "--reference", data_dir / "usd" / "RiggedSimple.usdz", "-o", tmp_path / "x.html")
    assert r.exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_clip_encoders_round_trip():
    """WebP and GIF (used without an H.264 encoder) keep every frame."""
    import io

    from anymole_usd.plugins.report.clips import encode_clip
    from PIL import Image

    frames = np.zeros((5, 20, 30, 3), dtype=np.uint8)
    for i in range(5):
        frames[i, :, i * 5:i * 5 + 6] = (240, 140, 30)
    for fmt, mime in (("gif", "image/gif"), ("webp", "image/webp")):
        data, got = encode_clip(frames, 24.0, fmt)
        assert got == mime
        im = Image.open(io.BytesIO(data))
        assert im.n_frames == 5 and im.size == (30, 20)


def test_body_root_skips_static_and_ground_roots(data_dir):
    """Root curves follow the joint that carries the body: past glTF's still _rootJoint/b_Root_00 chain and
    Bandai Namco's joint_Root on the ground, to the hips."""
    from anymole_usd.plugins.render.scene import load_scene
    from anymole_usd.plugins.report.curves import body_root, world_positions

    for path, expected in ((("gltf", "Fox.glb"), "b_Hip_01"), (WALK, "Hips"), (("usd", "CesiumMan.usdz"), None)):
        scene = load_scene(data_dir.joinpath(*path), frames=(0, 40) if path != ("usd", "CesiumMan.usdz") else None)
        pos = world_positions(scene.character, scene.motion)
        root = body_root(scene.character, pos)
        name = scene.character.skeleton.short_names[root]
        if expected:
            assert name == expected
        assert np.ptp(pos[:, root], axis=0).max() > 0  # it moves
