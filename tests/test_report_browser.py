"""The report in a real browser: headless Chromium (Debian's `chromium` package) draws the panels and plots, and
decodes the inlined H.264 clips. Skipped when no Chromium is installed (`apt-get install chromium`)."""
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from anymole_usd.cli.main import cli
from click.testing import CliRunner

BROWSER = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium (apt-get install chromium)")


def chromium(tmp_path, *args, timeout=120) -> subprocess.CompletedProcess:
    """Headless Chromium, isolated: no network services, no first-run, a new empty profile."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def report(tmp_path_factory, data_dir):
    from shots import shot_root

    root = tmp_path_factory.mktemp("browser")
    (root / "truth").mkdir()
    truth = shot_root(root / "truth", data_dir, times=range(1, 49))
    shot = shot_root(root, data_dir)
    assert CliRunner().invoke(cli, ["inbetween", str(shot), "--prior", "interp"]).exit_code == 0
    r = CliRunner().invoke(cli, ["report", str(shot), "--reference", str(truth), "--compare", "zero-velocity",
                                 "--size", "160x128", "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_screenshot_shows_panels_and_plots(report, tmp_path):
    import imageio.v3 as iio
    from anymole_usd.plugins.report.plots import CONTEXT, GAP, KEY

    png = tmp_path / "report.png"
    done = chromium(tmp_path, "--hide-scrollbars", "--window-size=1280,2600", f"--screenshot={png}",
                    f"file://{report['output']}")
    assert png.is_file(), done.stderr[-2000:]
    shot = iio.imread(png)[..., :3]
    assert shot.shape[:2] == (2600, 1280)
    assert shot.reshape(-1, 3).std(axis=0).min() > 20  # not a blank page

    def count(hex_colour: str, tol: int = 6) -> int:
        rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
        return int((np.abs(shot.astype(int) - rgb).max(axis=-1) <= tol).sum())

    # the timeline strips: context bar, gap bars, keyframe diamonds (drawn solid in the SVG plots)
    assert count(CONTEXT) > 2000 and count(GAP) > 2000 and count(KEY) > 100
    # the clips' posters: rendered characters on a checker floor, three 128 px panels side by side
    floor = (np.abs(shot.astype(int) - shot[..., :1]).max(-1) < 4) & (shot[..., 0] > 120) & (shot[..., 0] < 235)
    assert floor.sum() > 3 * 128 * 80


def test_browser_decodes_the_inlined_clips(report, tmp_path):
    """A page with the report's first clip and a few lines of script: the browser must decode its frames."""
    html = open(report["output"], encoding="utf-8").read()
    src = re.search(r'<video[^>]*\ssrc="(data:video/mp4;base64,[^"]+)"', html)
    if src is None:
        pytest.skip("clips are not MP4 here (no imageio-ffmpeg)")
    page = tmp_path / "decode.html"
    page.write_text(
        f'<!DOCTYPE html><video id="v" muted autoplay src="{src.group(1)}"></video><p id="out">pending</p><script>'
        "const v = document.getElementById('v'), out = document.getElementById('out');"
        "v.addEventListener('loadeddata', () => { out.textContent = `decoded ${v.videoWidth}x${v.videoHeight}`; });"
        "v.addEventListener('error', () => { out.textContent = `error ${v.error && v.error.code}`; });"
        "</script>", encoding="utf-8")
    done = chromium(tmp_path, "--virtual-time-budget=8000", "--dump-dom", f"file://{page}")
    status = re.search(r'<p id="out">([^<]*)</p>', done.stdout)
    assert status is not None, done.stderr[-2000:]
    assert status.group(1) == f"decoded {3 * 128 + 2 * 4}x160"
