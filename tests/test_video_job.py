"""`video prepare` and reading a generator's answer back with `inbetween --video-dir JOB`.

The shot is CesiumMan's real walk blocked out (context 1-24, keys 36 and 48, 24 fps);
the "truth" is the same walk with every sample. Reading checks stop before the
estimator, so they are quick; the full round trip is in test_video_dir_cli.py.
"""
import json

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("imageio_ffmpeg")
from anymole_usd.cli.main import cli  # noqa: E402

from shots import shot_root  # noqa: E402

SIZE = "48x64"


@pytest.fixture(scope="module")
def job(tmp_path_factory, data_dir):
    tmp = tmp_path_factory.mktemp("job")
    (tmp / "truth").mkdir()
    truth = shot_root(tmp / "truth", data_dir, times=list(range(1, 49)))
    shot = shot_root(tmp, data_dir)
    r = CliRunner().invoke(cli, ["video", "prepare", str(shot), "-o", str(tmp / "job"), "--size", SIZE,
                                 "--from", str(truth), "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return tmp, shot, truth, json.loads(r.output)


def _copy_job(src, dst, frames=False):
    import shutil

    shutil.copytree(src, dst, ignore=None if frames else shutil.ignore_patterns("frames"))
    return dst


def test_prepare_writes_the_job(job):
    import imageio.v3 as iio

    tmp, shot, truth, summary = job
    folder = tmp / "job"
    from anymole_usd.atomic_files import new_dir_mode

    assert folder.stat().st_mode & 0o777 == new_dir_mode()  # the user's umask, not a temp folder's 0700
    assert sorted(p.name for p in folder.iterdir()) == ["README.txt", "conditioning.mp4", "frames", "gaps",
                                                         "job.json", "known", "mask.mp4"]
    doc = json.loads((folder / "job.json").read_text())
    times, gen = np.asarray(doc["times"]), np.asarray(doc["generate"])
    # 15 fps grid: each 12-time-code (0.5 s) gap gets 7 frames; keys and gap ends are known frames
    assert doc["fps"] == 15 and doc["stage_fps"] == 24 and doc["num_frames"] == len(times) == summary["frames"]
    assert gen.sum() == 14 and not gen[[0, -1]].any() and 36 in times[~gen] and 48 in times[~gen]
    assert np.all(np.diff(times) > 0) and doc["size"] == {"height": 48, "width": 64} and doc["view"] == "front"
    assert set(times) <= set(doc["grid_times"]) and len(doc["grid_times"]) == 26 + 14  # every known sample
    assert len(doc["known_times"]) == 26
    assert [(g["first"], g["last"], len(g["times"])) for g in doc["gaps"]] == [(24, 36, 7), (36, 48, 7)]
    assert set(doc["cameras"]["views"]) == {"front", "left", "right", "back"}
    assert np.asarray(doc["cameras"]["views"]["front"]["K"]).shape == (3, 3)
    assert len(doc["shot_hash"]) == 20 and "cesium" in doc["prompt"].lower() or doc["prompt"]
    assert len(list((folder / "known").glob("*.png"))) == 26 and (folder / "known" / "0036.png").is_file()
    cond = iio.imread(folder / "conditioning.mp4", index=None)
    mask = iio.imread(folder / "mask.mp4", index=None)
    assert cond.shape == mask.shape == (len(times), 48, 64, 3)
    assert np.all(mask[gen].mean((1, 2, 3)) > 250) and np.all(mask[~gen].mean((1, 2, 3)) < 5)
    assert np.all(np.abs(cond[gen].astype(int) - 128).mean((1, 2, 3)) < 3)  # neutral grey where to generate
    key = iio.imread(folder / "known" / "0036.png")
    last = iio.imread(folder / "gaps" / "0" / "last.png")
    np.testing.assert_array_equal(last, key)  # gap 0 ends on key 36
    i36 = int(np.flatnonzero(times == 36)[0])
    assert np.abs(cond[i36].astype(int) - key).mean() < 6  # H.264, nearly lossless
    assert len(list((folder / "frames").glob("frame_*.png"))) == len(times)
    # a perfect generator: the truth at a known time is the known render
    np.testing.assert_array_equal(iio.imread(folder / "frames" / f"frame_{i36:04d}.png"), key)
    readme = (folder / "README.txt").read_text()
    assert f"{len(times)} frames" in readme and "--video-dir" in readme and "WanVACEPipeline" in readme


def test_job_answers_by_index_time_and_video(job, tmp_path):
    import imageio.v2 as iio2
    import imageio.v3 as iio

    from anymole_usd.errors import InputError
    from anymole_usd.plugins.video.job import read_job
    from anymole_usd.plugins.video.job_frames import job_frames

    src = job[0] / "job"
    ref = read_job(src)
    truth = job_frames(ref)  # frames/frame_<index>.png
    assert sorted(truth) == sorted(map(float, ref.fill_times)) and truth[37.5].shape == (48, 64, 3)

    by_time = _copy_job(src, tmp_path / "t")
    (by_time / "frames").mkdir()
    for t, img in truth.items():
        iio.imwrite(by_time / "frames" / f"{t:g}.png", img)
    got = job_frames(read_job(by_time))
    assert all(np.array_equal(got[t], truth[t]) for t in truth)

    # one video, twice the size (same aspect): resized back
    vid = _copy_job(src, tmp_path / "v")
    full = np.stack([iio.imread(src / "frames" / f"frame_{i:04d}.png") for i in range(ref.num_frames)])
    big = np.repeat(np.repeat(full, 2, 1), 2, 2)
    w = iio2.get_writer(str(vid / "answer.mp4"), fps=15, codec="libx264", quality=10, macro_block_size=1)
    for f in big:
        w.append_data(f)
    w.close()
    got = job_frames(read_job(vid))
    assert np.abs(got[37.5].astype(int) - truth[37.5]).mean() < 8

    # wrong aspect: the error names the size expected
    bad = _copy_job(src, tmp_path / "a")
    iio.imwrite(bad / "answer.webm", np.zeros((ref.num_frames, 48, 48, 3), np.uint8), fps=15, codec="libvpx-vp9")
    with pytest.raises(InputError, match="64x48"):
        job_frames(read_job(bad))
    # wrong frame count
    (bad / "answer.webm").unlink()
    iio.imwrite(bad / "answer.mp4", np.zeros((ref.num_frames - 1, 48, 64, 3), np.uint8), fps=15,
                macro_block_size=1)
    with pytest.raises(InputError, match=f"{ref.num_frames - 1} frames, the job has {ref.num_frames}"):
        job_frames(read_job(bad))
    # a video and frames/: ambiguous
    (bad / "frames").mkdir()
    iio.imwrite(bad / "frames" / "frame_0000.png", full[0])
    with pytest.raises(InputError, match="keep one"):
        job_frames(read_job(bad))
    (bad / "answer.mp4").unlink()
    with pytest.raises(InputError, match="no frame 1 "):
        job_frames(read_job(bad))
    iio.imwrite(bad / "frames" / "0036.png", full[0])
    with pytest.raises(InputError, match="mixes"):
        job_frames(read_job(bad))


def _inbetween(shot, job_dir, *extra):
    return CliRunner().invoke(cli, ["inbetween", str(shot), "--video-dir", str(job_dir), "--param", "lambda_img=0",
                                    *extra])


def test_job_for_another_shot_version_or_camera_is_refused(job, tmp_path, data_dir):
    tmp, shot, truth, _ = job
    edited_dir = tmp_path / "edited"
    edited_dir.mkdir()
    edited = shot_root(edited_dir, data_dir, times=list(range(1, 25)) + [36, 47])  # a key moved
    r = _inbetween(edited, tmp / "job")
    assert r.exit_code == 2 and "another version of the shot" in r.output, r.output
    assert not (edited_dir / "shot.inbetween.usda").exists()

    moved = _copy_job(tmp / "job", tmp_path / "cam", frames=True)
    doc = json.loads((moved / "job.json").read_text())
    doc["cameras"]["views"]["front"]["world_to_cam"][0][3] += 0.5
    (moved / "job.json").write_text(json.dumps(doc))
    r = _inbetween(shot, moved)
    assert r.exit_code == 2 and "other cameras" in r.output, r.output
    r = _inbetween(shot, tmp / "job", "--param", "rate=12")
    assert r.exit_code == 2 and "rate" in r.output, r.output


def test_prepare_bad_input(job, tmp_path):
    tmp, shot, truth, _ = job
    runner = CliRunner()
    r = runner.invoke(cli, ["video", "prepare", str(shot), "-o", str(tmp_path / "j"), "--size", "47x64"])
    assert r.exit_code == 2 and "even" in r.output
    r = runner.invoke(cli, ["video", "prepare", str(shot), "-o", str(tmp_path / "j"), "--rate", "0"])
    assert r.exit_code == 2 and "--rate" in r.output
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("x")
    r = runner.invoke(cli, ["video", "prepare", str(shot), "-o", str(tmp_path / "busy")])
    assert r.exit_code == 2 and "not a video job" in r.output and (tmp_path / "busy" / "mine.txt").exists()
    r = runner.invoke(cli, ["video", "prepare", str(shot), "-o", str(tmp_path / "j"), "--from",
                            str(tmp_path / "nope.usda")])
    assert r.exit_code == 2 and "nope.usda" in r.output and not (tmp_path / "j").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".anymole")]


def test_prepare_reads_the_authored_samples_under_an_earlier_result(tmp_path, data_dir):
    shot = shot_root(tmp_path, data_dir)
    runner = CliRunner()
    assert runner.invoke(cli, ["inbetween", str(shot), "--prior", "interp"]).exit_code == 0  # composes a result
    r = runner.invoke(cli, ["video", "prepare", str(shot), "-o", str(tmp_path / "job"), "--size", SIZE, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["generate"] == 14  # not "no gaps": the earlier result is set aside


def test_next_command_repeats_the_timeline_options(job, tmp_path):
    """A dense shot held out with --context/--keys: the printed next step must name the same options,
    or inbetween would find other gaps than the job's."""
    import shlex

    _, _, truth, _ = job
    r = CliRunner().invoke(cli, ["video", "prepare", str(truth), "-o", str(tmp_path / "j"), "--size", SIZE,
                                 "--context", "1:24", "--keys", "36,48"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    (line,) = [ln for ln in r.output.splitlines() if ln.startswith("next:")]
    args = shlex.split(line.split(", then ", 1)[1])
    assert args[:3] == ["anymole-usd", "inbetween", str(truth)]
    assert args[3:] == ["--context", "1:24", "--keys", "36,48", "--video-dir", str(tmp_path / "j")]
