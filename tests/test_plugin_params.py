"""Self-describing plugins (issue 19.1, 13.12/13.13): one ``param_spec`` declaration validates and documents."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from anymole_usd import registry
from anymole_usd.cli.main import cli
from anymole_usd.errors import InputError
from anymole_usd.metric import Metric
from anymole_usd.parameters import Param, Parameters
from anymole_usd.prior import Prior

REPO = Path(__file__).resolve().parents[1]


def test_plugins_details_lists_parameters_from_the_declaration():
    r = CliRunner().invoke(cli, ["plugins", "--kind", "metrics", "--details"])
    assert r.exit_code == 0, r.output
    text = r.output
    # foot-skate declares contact_height; the table shows type, default, allowed range and meaning.
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("contact_height"))
    assert "float" in line and "0.01" in line and "> 0, <= 1" in line and "contact" in line
    assert "Mean horizontal speed" in text  # descriptions
    r = CliRunner().invoke(cli, ["plugins", "--kind", "priors", "--details"])
    assert r.exit_code == 0, r.output
    interp = r.output.split("  interp ")[1].split("\n  ")[0:3]
    assert any("parameters: none" in part for part in interp), r.output


def test_plugins_json_carries_description_and_parameters():
    r = CliRunner().invoke(cli, ["plugins", "--kind", "metrics", "--json"])
    assert r.exit_code == 0, r.output
    data = {p["name"]: p for p in json.loads(r.output)}
    hit = data["keyframe-hit"]["parameters"]
    assert hit == [{"name": "tolerance", "type": "float", "default": 1e-4, "allowed": ">= 0",
                    "help": hit[0]["help"]}] and hit[0]["help"]
    assert data["l2q"]["parameters"] == [] and data["l2q"]["description"]
    # every installed kind that imports is described (empty list when a class declares nothing)
    r = CliRunner().invoke(cli, ["plugins", "--json"])
    for p in json.loads(r.output):
        if p["ok"]:
            assert isinstance(p["parameters"], list) and "description" in p, p


def test_registry_reads_param_spec_from_any_class():
    class Source:  # not a Prior: a video source, backbone or stage only adds the attribute
        """A test source."""
        param_spec = Parameters(Param("rate", 15.0, "frames per second", min=0, min_exclusive=True))

    class Bare:
        pass

    assert registry.spec_of(Source).names() == ["rate"]
    assert registry.description_of(Source) == "A test source."
    assert len(registry.spec_of(Bare)) == 0


def test_prior_base_validates_coerces_and_defaults():
    class Windowed(Prior):
        name = "windowed"
        param_spec = Parameters(Param("window", 1.0, "s", min=0, min_exclusive=True),
                                Param("character", None, "programmatic", type=object, nullable=True))

    p = Windowed(window="2.5")
    assert p.params == {"window": 2.5} and p.option("window") == 2.5
    assert Windowed().option("window") == 1.0 and Windowed().params == {}
    marker = object()
    assert Windowed(character=marker).params["character"] is marker  # passed through untouched
    for bad in ("nan", "inf", "-1", "0", "abc"):
        with pytest.raises(InputError, match="windowed prior: bad value .* for window"):
            Windowed(window=bad)
    with pytest.raises(InputError, match="unknown parameter"):
        Windowed(foo=1)
    # the installed baselines declare nothing, so anything is rejected
    for name in ("interp", "zero-velocity"):
        with pytest.raises(InputError, match=f"{name} prior: unknown parameter.*foo.*no parameters"):
            registry.load("priors", name)(foo="1")


def test_metric_base_validates():
    class M(Metric):
        name = "m"
        param_spec = Parameters(Param("k", 3, "count", min=1))

    assert M(k="4").option("k") == 4 and M().option("k") == 3
    with pytest.raises(InputError, match="m metric: bad value"):
        M(k="1.5")
    with pytest.raises(InputError, match="unknown"):
        registry.load("metrics", "l2q")(k=1)
    hit = registry.load("metrics", "keyframe-hit")
    assert hit(tolerance="0.5").option("tolerance") == 0.5
    hl2q = registry.load("metrics", "hl2q")
    assert hl2q().option("fraction") == 0.5 and hl2q(fraction="0.25").option("fraction") == 0.25
    with pytest.raises(InputError, match="hl2q metric: bad value"):
        hl2q(fraction=2)


@pytest.mark.parametrize("prior, param", [("interp", "foo=1"), ("interp", "window=nan"), ("graph", "window=nan"),
                                          ("zero-velocity", "window=1")])
def test_inbetween_bad_params_exit_2_without_writing(tmp_path, prior, param):
    shot_dir = tmp_path / "d"
    shutil.copytree(REPO / "examples" / "cesiumman", shot_dir)
    before = sorted(p.name for p in shot_dir.iterdir())
    r = CliRunner().invoke(cli, ["inbetween", str(shot_dir / "shot.usda"), "--prior", prior, "--param", param])
    assert r.exit_code == 2, r.output
    assert f"{prior} prior" in r.output and param.split("=")[0] in r.output
    assert "Traceback" not in r.output
    assert sorted(p.name for p in shot_dir.iterdir()) == before
