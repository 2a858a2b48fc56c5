"""Plugins come from entry points: a third-party package is listed and usable; a broken one is reported."""
import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from anymole_usd import registry
from anymole_usd.cli.main import cli
from anymole_usd.errors import PluginError

from shots import shot_root

PLUGIN_SRC = '''
import numpy as np
from anymole_usd.prior import Prior

class MirrorPrior(Prior):
    name = "mirror-hold"
    description = "third-party test prior: holds the NEXT known pose"

    def fill(self, request):
        known = request.known
        idx = np.clip(np.searchsorted(known.times, request.target_times), 0, known.num_frames - 1)
        m = known.select(idx)
        m.times = np.asarray(request.target_times, dtype=float)
        return m
'''


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """Install a fake distribution (a dist-info with entry_points.txt) on sys.path, as pip would."""
    site = tmp_path / "site"
    (site / "acme_priors").mkdir(parents=True)
    (site / "acme_priors" / "__init__.py").write_text(PLUGIN_SRC)
    (site / "acme_broken.py").write_text("raise ImportError('acme_broken needs libfoo')\n")
    dist = site / "acme_priors-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-priors\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text(
        "[anymole_usd.priors]\nmirror-hold = acme_priors:MirrorPrior\nbroken = acme_broken:Nope\n")
    monkeypatch.syspath_prepend(str(site))
    yield
    for mod in ("acme_priors", "acme_broken"):
        sys.modules.pop(mod, None)


def test_third_party_plugin_is_listed_and_usable(third_party, tmp_path, data_dir):
    infos = {p.name: p for p in registry.plugins("priors")}
    assert infos["mirror-hold"].package == "acme-priors" and infos["mirror-hold"].version == "1.2.3"
    assert "interp" in infos  # built-ins unaffected

    r = CliRunner().invoke(cli, ["plugins", "--json"])
    rows = {p["name"]: p for p in json.loads(r.output)}
    assert r.exit_code == 0
    assert rows["mirror-hold"]["ok"] and not rows["broken"]["ok"]
    assert "libfoo" in rows["broken"]["error"] and rows["interp"]["ok"]

    shot = shot_root(tmp_path, data_dir)
    r = CliRunner().invoke(cli, ["inbetween", str(shot), "--prior", "mirror-hold", "--json"])
    assert r.exit_code == 0, r.output
    from anymole_usd.reading import find_bindings, open_stage, read_motion

    stage = open_stage(shot)
    (b,) = find_bindings(stage)
    m = read_motion(stage, b)
    i25, i36 = m.index_of([25, 36])
    np.testing.assert_allclose(m.rotations[i25], m.rotations[i36], atol=1e-7)


def test_broken_plugin_error_is_clear(third_party):
    with pytest.raises(PluginError, match="failed to import.*libfoo"):
        registry.load("priors", "broken")
    with pytest.raises(PluginError, match="unknown plugin kind"):
        registry.plugins("widgets")
