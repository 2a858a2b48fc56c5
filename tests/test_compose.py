"""compose: tag spans, keyframes, music beats and transitions on a small library of real Bandai clips."""
from __future__ import annotations

import json
import wave

import numpy as np
import pytest
from click.testing import CliRunner

from anymole_usd.cli.main import cli

BANDAI = "bvh/humanoid/bandai_namco"
CLIPS = {"dataset-1_walk_normal_001.bvh": "walk", "dataset-2_walk_normal_004.bvh": "walk",
         "dataset-2_walk-turn-left_normal_032.bvh": "walk", "dataset-2_run_normal_021.bvh": "run",
         "dataset-1_run_active_001.bvh": "run", "dataset-1_kick_normal_001.bvh": "kick"}
HELD_OUT = "dataset-1_walk_tired_001.bvh"  # keyframes come from a take the library does not hold


def run(*args, ok=True):
    r = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert r.exit_code == 0, r.output
    return r


def click_track(path, bpm: float, seconds: float, sr: int = 22050) -> None:
    """A metronome: a short decaying 1 kHz click on every beat, 16-bit mono wav."""
    y = np.zeros(int(seconds * sr))
    n = int(0.03 * sr)
    click = np.sin(2 * np.pi * 1000 * np.arange(n) / sr) * np.exp(-np.arange(n) / (0.005 * sr))
    for b in np.arange(0.0, seconds - 0.05, 60.0 / bpm):
        i = int(b * sr)
        y[i:i + n] += click[: len(y) - i]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(y, -1, 1) * 30000).astype(np.int16).tobytes())


@pytest.fixture(scope="module")
def lib(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("compose")
    csv = root / "tags.csv"
    csv.write_text("file,start,end,tag\n" + "".join(f"{f},,,{t}\n" for f, t in CLIPS.items()))
    run("library", "build", root / "lib", *[data_dir / BANDAI / f for f in CLIPS], "--tags", csv, "--json")
    return root / "lib"


def compose_json(lib, out, *args) -> dict:
    return json.loads(run("compose", lib, "-o", out, *args, "--json").output)


def test_tags_are_honoured_and_the_output_composes(lib, tmp_path):
    out = tmp_path / "mix.usda"
    report = compose_json(lib, out, "--duration", 8, "--tags", "walk:0-4,run:4-8")
    assert report["output"] == str(out) and report["fps"] == 30 and report["frames"] == 241
    segs = report["segments"]
    assert segs[0]["output"][0] == 0 and segs[-1]["output"][1] == pytest.approx(8.0)
    assert all(a["output"][1] == pytest.approx(b["output"][0]) for a, b in zip(segs, segs[1:]))
    for s in segs:
        assert set(s) == {"clip", "tags", "source", "output"}
        assert s["source"][1] - s["source"][0] == pytest.approx(s["output"][1] - s["output"][0], abs=1e-6)
    from anymole_usd.library import Library
    from anymole_usd.library.quality import tag_coverage
    from anymole_usd.library.tags import parse_spans

    assert tag_coverage(Library.open(lib), segs, parse_spans("walk:0-4,run:4-8", 8), 30) >= 0.95
    # What compose writes, the other commands read.
    info = json.loads(run("info", out, "--json").output)
    assert info["time_codes_per_second"] == 30 and info["up_axis"] == "Y" and info["meters_per_unit"] == 0.01
    sk = info["skeletons"][0]
    assert sk["joints"] == 22 and sk["provenance"]["tool"] == "compose"
    assert sk["provenance"]["details"]["compose"]["segments"] == segs
    assert sk["authored_range"] == [0, 240]
    exported = json.loads(run("export", out, "-o", tmp_path / "mix.bvh", "--json").output)
    assert exported["frames"] == 241


def test_unknown_tag_and_bad_requests_are_exit_2(lib, tmp_path):
    r = run("compose", lib, "-o", tmp_path / "x.usda", "--duration", 4, "--tags", "dance:0-4", ok=False)
    assert r.exit_code == 2 and "dance" in r.output and "walk" in r.output
    r = run("compose", lib, "-o", tmp_path / "x.usda", "--duration", 4, "--tags", "walk:3-1", ok=False)
    assert r.exit_code == 2 and "--tags" in r.output
    r = run("compose", lib, "-o", tmp_path / "x.usda", "--duration", 0, ok=False)
    assert r.exit_code == 2 and "--duration" in r.output
    assert not (tmp_path / "x.usda").exists()


def test_refuses_to_overwrite_other_files(lib, tmp_path):
    mine = tmp_path / "mine.usda"
    mine.write_text("#usda 1.0\n")
    r = run("compose", lib, "-o", mine, "--duration", 2, ok=False)
    assert r.exit_code == 2 and "--force" in r.output and mine.read_text() == "#usda 1.0\n"
    run("compose", lib, "-o", mine, "--duration", 2, "--force")
    before = mine.read_bytes()
    run("compose", lib, "-o", mine, "--duration", 3)  # an earlier compose output: replaced
    assert mine.read_bytes() != before


def test_keyframes_are_met_exactly(lib, tmp_path, data_dir):
    from anymole_usd import kinematics
    from anymole_usd import rotations as rot
    from anymole_usd.authoring import write_skel_stage
    from anymole_usd.plugins.io.base import ImportOptions
    from anymole_usd.plugins.io.convert import read_file
    from anymole_usd.reading import find_bindings, open_stage, read_motion

    scene, _ = read_file(str(data_dir / BANDAI / HELD_OUT), ImportOptions())
    keys = scene.motion.select(np.array([0, 45, 90, 135]))
    shot = tmp_path / "keys.usda"
    write_skel_stage(shot, scene.skeleton, {"anim": keys}, "anim", fps=30, meters_per_unit=scene.meters_per_unit)
    out = tmp_path / "keyed.usda"
    compose_json(lib, out, "--duration", 5, "--keys", shot)
    stage = open_stage(str(out))
    b = find_bindings(stage, str(out))[0]
    m = read_motion(stage, b, file=str(out))
    at = m.at_times(keys.times)
    assert np.degrees(rot.angle_between(at.rotations, keys.rotations)).max() < 0.01
    p_out = kinematics.global_positions(b.skeleton.parents, at.rotations, at.translations, at.scales)
    p_key = kinematics.global_positions(scene.skeleton.parents, keys.rotations, keys.translations, keys.scales)
    assert np.abs(p_out - p_key).max() < 0.05  # cm (float32 samples)
    # Keyframes past the duration are refused, naming the time; keys of another skeleton too.
    r = run("compose", lib, "-o", tmp_path / "short.usda", "--duration", 3, "--keys", shot, ok=False)
    assert r.exit_code == 2 and "time 135" in r.output
    r = run("compose", lib, "-o", tmp_path / "other.usda", "--duration", 3, "--keys",
            data_dir / "usd/CesiumMan.usdz", ok=False)
    assert r.exit_code == 2 and "no animated Skeleton with the joints" in r.output


def test_music_aligns_kinematic_beats(lib, tmp_path):
    from anymole_usd.library.compose import ComposeRequest, compose
    from anymole_usd.library.music import music_beats
    from anymole_usd.library.quality import beat_alignment

    wav = tmp_path / "click.wav"
    click_track(wav, bpm=100, seconds=13)
    beats, tempo = music_beats(str(wav))
    assert abs(tempo - 100) < 3 and len(beats) >= 18
    scores = []
    for seed in (0, 1):
        base = compose(ComposeRequest(str(lib), 12, tags="walk", seed=seed))
        music = compose(ComposeRequest(str(lib), 12, tags="walk", seed=seed, music=str(wav)))
        b = beats[beats <= 12]
        scores.append((beat_alignment(base, b), beat_alignment(music, b)))
    without, with_music = np.mean(scores, axis=0)
    assert with_music >= 1.3 * without, scores


def test_transition_prior_and_seed(lib, tmp_path):
    out = tmp_path / "t.usda"
    report = compose_json(lib, out, "--duration", 6, "--tags", "walk:0-3,kick:3-6", "--transition-prior", "interp",
                          "--seed", 3)
    assert len(report["segments"]) >= 2
    info = json.loads(run("info", out, "--json").output)
    assert info["skeletons"][0]["provenance"]["prior"] == "interp"
    # The prior re-fills the frames around each jump and nothing else.
    from anymole_usd.library.compose import ComposeRequest, compose
    from anymole_usd.library.transitions import HALF_GAP

    kw = dict(tags="walk:0-3,kick:3-6", seed=3)
    plain = compose(ComposeRequest(str(lib), 6, **kw))
    filled = compose(ComposeRequest(str(lib), 6, transition_prior="interp", **kw))
    assert plain.segments == filled.segments and len(plain.jumps)
    changed = np.abs(plain.motion.rotations - filled.motion.rotations).max(axis=(1, 2)) > 1e-6
    near = np.zeros(len(changed), dtype=bool)
    half = int(round(HALF_GAP * plain.fps))
    for j in plain.jumps:
        near[max(0, j - half):j + half] = True
    assert changed.any() and not changed[~near].any()
    r = run("compose", lib, "-o", tmp_path / "u.usda", "--duration", 3, "--transition-prior", "nosuch", ok=False)
    assert r.exit_code == 2 and "nosuch" in r.output
