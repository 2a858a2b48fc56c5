"""Issue 13 item 13 (graph part): the graph prior's parameters are declared once, with ranges."""
from __future__ import annotations

import math

import pytest
from click.testing import CliRunner

from anymole_usd import registry
from anymole_usd.cli.main import cli
from anymole_usd.errors import InputError

BAD = [("beam_width", 0), ("beam_width", "2.5"), ("candidates", 0), ("threshold_scale", -1), ("threshold_scale", 0),
       ("blend", -1), ("window", -0.5), ("velocity_weight", "nan"), ("jump_penalty", "inf"),
       ("end_weight", -2), ("min_context", "-1"), ("admit", float("nan")), ("jitter", -0.1),
       ("search", "astar"), ("profile", "cubic"), ("foot_lock", "maybe"), ("lock_ramp", "-1e-3")]


def graph(**params):
    return registry.load("priors", "graph")(**params)


@pytest.mark.parametrize("name,value", BAD)
def test_out_of_range_values_are_rejected(name, value):
    with pytest.raises(InputError, match=rf"graph prior: bad value .* for {name}"):
        graph(**{name: value})


def test_every_parameter_has_a_meaning_and_its_default_passes_its_own_check():
    spec = registry.load("priors", "graph").param_spec
    assert len(spec) >= 20
    for p in spec:
        assert p.help and "\n" not in p.help, p.name
        assert p.coerce(p.default, "graph prior") == p.default  # defaults are inside their ranges
        if isinstance(p.default, float):
            assert math.isfinite(p.default)


def test_values_are_coerced_and_recorded_as_given():
    p = graph(threshold_scale="1.5", foot_lock="false", beam_width="32", blend=0)
    assert p.parameters() == {"threshold_scale": 1.5, "foot_lock": False, "beam_width": 32, "blend": 0.0}
    assert p.option("window") == 1.0  # undeclared values come from the declaration


def test_cli_rejects_bad_graph_parameters_with_exit_2(tmp_path, data_dir):
    from shots import shot_root

    shot = shot_root(tmp_path, data_dir)
    before = sorted(p.name for p in tmp_path.iterdir())
    for arg in ("beam_width=0", "threshold_scale=-1", "blend=-1", "window=nan", "nonsense=1"):
        r = CliRunner().invoke(cli, ["inbetween", str(shot), "--param", arg])
        assert r.exit_code == 2, (arg, r.output)
        assert "graph prior" in r.output and "Traceback" not in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
