"""Bad command lines a hostile user types: exit 2, exactly one `error:` line on stderr, nothing written.

Found by trying every command with garbage (see the hostile-user round in docs); each test is the
smallest reproduction. `d` is a copy of examples/cesiumman (CesiumMan, CC-BY 4.0, Cesium).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from anymole_usd.cli.main import cli

from cli_run import state

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def d(tmp_path):
    dest = tmp_path / "d"
    shutil.copytree(REPO / "examples" / "cesiumman", dest)
    return dest


def refused(*args, match: str, folder: Path | None = None) -> str:
    """Run; expect exit 2, one `error:` line on stderr containing ``match``, nothing else there, no file changed."""
    before = state(folder) if folder else None
    r = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert len(errors) == 1 and match in errors[0], r.stderr
    assert all(ln.startswith("error:") or ln.startswith("[") for ln in r.stderr.splitlines() if ln.strip()), r.stderr
    assert "error:" not in r.stdout, r.stdout
    if folder:
        assert state(folder) == before
    return errors[0]


def test_info_with_a_bad_context_says_error_on_stderr(d):
    # The listing still goes to stdout; the reason was only an indented line there.
    refused("info", d / "shot.usda", "--context", "5:1", match="context 5:1 ends before it starts")
    refused("info", d / "shot.usda", "--keys", "1,,2", match="key 1 lies inside the context")


@pytest.mark.parametrize("command", ["inbetween", "retarget"])
def test_options_that_would_be_ignored_are_refused(d, command):
    target = [d / "shot.usda"] if command == "inbetween" else ["--to", d / "shot.usda"]
    refused(command, *target, "--in-place", "-o", d / "r.usda", match="-o and --in-place exclude each other",
            folder=d)
    refused(command, *target, "--keep-result", match="--keep-result only goes with --undo", folder=d)


def test_undo_on_a_truncated_usda_keeps_usds_line_and_column(d):
    text = (d / "shot.usda").read_bytes()
    (d / "shot.usda").write_bytes(text[:20000])
    line = refused("inbetween", "--undo", d / "shot.usda", match="line 40, column", folder=d)
    assert "(')" not in line


def test_ill_formed_prim_path_is_one_line_without_usd_warnings(d):
    refused("inbetween", d / "shot.usda", "--prim", "/Ce$$", match="not a valid prim path", folder=d)


def test_retarget_refuses_a_huge_rate_and_an_animation_name_for_a_bvh(d, data_dir):
    source = data_dir / "bvh" / "humanoid" / "bandai_namco" / "dataset-1_run_active_001.bvh"
    # --fps 1e9 was accepted and ran the machine out of memory
    refused("retarget", source, "--to", d / "shot.usda", "--fps", "1e9", match="at most 10000", folder=d)
    # --animation was silently ignored for a BVH (as --source-prim is refused)
    refused("retarget", source, "--to", d / "shot.usda", "--animation", "nope", match="a BVH file holds one clip",
            folder=d)


def test_a_refused_output_fails_before_the_prior_runs(d, tmp_path):
    # These were refused only after the whole prior had run (minutes on a long shot, hours with video),
    # after its progress lines.
    (d / "other.usda").write_text("#usda 1.0\n")
    for args in (["-o", d / "other.usda"], ["-o", d / "CesiumMan.usdz"]):
        r = CliRunner().invoke(cli, [str(a) for a in ["inbetween", d / "shot.usda", *args]], catch_exceptions=False)
        assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert r.stderr.startswith("error:"), r.stderr
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "anim.usda").write_bytes((d / "shot.usda").read_bytes())
    shutil.copy(d / "CesiumMan.usdz", shared / "CesiumMan.usdz")
    (d / "outside.usda").write_text('#usda 1.0\n(\n    subLayers = [\n        @../shared/anim.usda@\n    ]\n)\n')
    r = CliRunner().invoke(cli, ["inbetween", str(d / "outside.usda"), "--in-place"], catch_exceptions=False)
    assert r.exit_code == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()], r.stderr
    assert "outside the shot's folder" in r.stderr


@pytest.mark.parametrize("args, match", [
    (["inbetween", "{d}/shot.usda", "--seed", "-1"], "Invalid value for '--seed'"),
    (["info", "{d}"], "is a directory"),
    (["inbetween"], "Missing argument 'SHOT'"),
    (["library", "build"], "Missing argument 'LIBRARY'"),
    (["video", "prepare", "{d}/shot.usda"], "Missing option '-o'"),
    (["--bogus"], "No such option '--bogus'"),
    (["nope"], "No such command 'nope'"),
])
def test_usage_errors_are_one_error_line_too(d, args, match):
    # click printed "Usage: ... / Try ... / Error: ..." (three lines, capital E) for these.
    line = refused(*[a.format(d=d) for a in args], match=match, folder=d)
    assert "--help" in line


def test_bare_groups_still_show_their_help():
    r = CliRunner().invoke(cli, ["library"])
    assert "Usage:" in r.output and "library [OPTIONS] COMMAND" in r.output and "build" in r.output


def test_a_line_break_in_a_file_name_is_one_error_line(d):
    # USD cannot store such a name as an asset path: every run was exit 1 (Tf ErrorException) after the prior.
    odd = d / "new\nline.usda"
    (d / "shot.usda").rename(odd)
    refused("inbetween", odd, match="control character", folder=d)
    refused("inbetween", odd, "--in-place", match="control character", folder=d)
    (d / "shot.usda").write_bytes(odd.read_bytes())
    (d / "sub\ndir").mkdir()
    refused("inbetween", d / "shot.usda", "-o", d / "sub\ndir" / "r.usda", match="control character", folder=d)
