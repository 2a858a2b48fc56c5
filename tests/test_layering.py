"""Layered results compose over animation in the root layer, a sublayer and a reference; undo restores."""
import os
import stat

import numpy as np
import pytest
from pxr import Sdf, Usd, UsdSkel

from anymole_usd import layering
from anymole_usd.pipeline import InbetweenOptions, run_inbetween
from anymole_usd.reading import find_bindings, open_stage, read_motion
from anymole_usd.schema import read_provenance

from shots import CONTEXT, KEYS, composed_samples, shot_reference, shot_root, shot_sublayer

GENERATED = [t for t in range(1, 49) if t not in CONTEXT + KEYS]


def _bytes(path):
    return open(path, "rb").read()


def _bound_motion(path):
    stage = open_stage(path)
    (b,) = [b for b in find_bindings(stage) if b.animation_path]
    return stage, b, read_motion(stage, b)


def _check_result(shot, before):
    after = composed_samples(shot)
    for t in CONTEXT + KEYS:  # known samples compose unchanged
        np.testing.assert_array_equal(after[float(t)], before[float(t)])
    stage, b, m = _bound_motion(shot)
    assert m.index_of(GENERATED).min() >= 0  # every gap frame is now authored
    prov = read_provenance(stage.GetPrimAtPath(b.animation_path))
    assert prov is not None and prov.prior == "interp"
    assert prov.generated_times == [float(t) for t in GENERATED]
    assert prov.keyframes == [36.0, 48.0] and prov.context_range == (1.0, 24.0)
    return prov


@pytest.mark.parametrize("where", ["root", "sublayer", "reference"])
def test_compose_and_undo(tmp_path, data_dir, where):
    if where == "root":
        shot = shot_root(tmp_path, data_dir)
        holder = shot
    elif where == "sublayer":
        shot, holder = shot_sublayer(tmp_path, data_dir)
    else:
        shot, holder = shot_reference(tmp_path, data_dir)
    before = composed_samples(shot)
    shot_bytes, holder_bytes = _bytes(shot), _bytes(holder)

    report = run_inbetween(str(shot), InbetweenOptions(prior="interp"))
    prov = _check_result(shot, before)
    expected_mode = "retarget" if where == "root" else "override"
    assert prov.mode == expected_mode and report["animations"][0]["mode"] == expected_mode
    out = tmp_path / "shot.inbetween.usda"
    assert report["output"] == str(out) and out.exists()
    if where != "root":
        assert _bytes(holder) == holder_bytes  # original samples untouched
    # The only edit of the shot: one sublayer entry (plus the binding when the root layer binds).
    root = Sdf.Layer.OpenAsAnonymous(str(shot))
    assert list(root.subLayerPaths)[0] == "./shot.inbetween.usda"
    # The result layer carries the stage's timing and units.
    res = Sdf.Layer.OpenAsAnonymous(str(out))
    assert res.timeCodesPerSecond == 24 and res.framesPerSecond == 24
    assert res.pseudoRoot.GetInfo("upAxis") == "Y" and res.pseudoRoot.GetInfo("metersPerUnit") == 1.0

    actions = {a["path"]: a["action"] for a in layering.undo(str(shot))["actions"]}
    assert actions == {str(out): "removed", str(shot): "restored"} and not out.exists()
    assert _bytes(shot) == shot_bytes and _bytes(holder) == holder_bytes
    after_undo = composed_samples(shot)
    assert after_undo.keys() == before.keys()
    for t in before:
        np.testing.assert_array_equal(after_undo[t], before[t])


def test_root_layer_samples_stay_byte_identical(tmp_path, data_dir):
    shot = shot_root(tmp_path, data_dir)
    original = Sdf.Layer.OpenAsAnonymous(str(shot))
    run_inbetween(str(shot), InbetweenOptions(prior="interp"))
    edited = Sdf.Layer.OpenAsAnonymous(str(shot))
    for name in ("translations", "rotations", "scales"):
        path = Sdf.Path("/Char/Rig/Anim").AppendProperty(name)
        a, b = original.GetAttributeAtPath(path), edited.GetAttributeAtPath(path)
        assert a.GetInfo("timeSamples") == b.GetInfo("timeSamples")


def test_rerun_is_deterministic_and_does_not_stack(tmp_path, data_dir):
    shot = shot_root(tmp_path, data_dir)
    run_inbetween(str(shot), InbetweenOptions(prior="interp"))
    first_shot, first_out = _bytes(shot), _bytes(tmp_path / "shot.inbetween.usda")
    run_inbetween(str(shot), InbetweenOptions(prior="interp"))
    assert _bytes(shot) == first_shot
    assert _bytes(tmp_path / "shot.inbetween.usda") == first_out
    assert list(Sdf.Layer.OpenAsAnonymous(str(shot)).subLayerPaths) == ["./shot.inbetween.usda"]


def test_rerun_with_other_keys_recomputes_from_original(tmp_path, data_dir):
    shot = shot_root(tmp_path, data_dir)
    run_inbetween(str(shot), InbetweenOptions(prior="interp"))
    report = run_inbetween(str(shot), InbetweenOptions(prior="zero-velocity", keys=[48]))
    assert report["animations"][0]["frames_to_fill"] == 23  # 25..47; 36 is no longer a key
    stage, b, m = _bound_motion(shot)
    i25, i47 = m.index_of([25, 47])
    np.testing.assert_allclose(m.rotations[i47], m.rotations[i25])  # held pose


def test_in_place_writes_into_holder_with_backup_and_undo(tmp_path, data_dir):
    shot, holder = shot_sublayer(tmp_path, data_dir)
    before = composed_samples(shot)
    holder_bytes = _bytes(holder)
    report = run_inbetween(str(shot), InbetweenOptions(prior="interp", in_place=True))
    assert report["animations"][0]["mode"] == "inPlace"
    kept = tmp_path / ".anymole" / "shot.usda" / "inbetween" / "originals"
    assert [_bytes(p) for p in kept.iterdir()] == [holder_bytes]  # the exact original, by its digest
    assert not (tmp_path / "shot.inbetween.usda").exists()
    prov = _check_result(shot, before)
    assert prov.mode == "inPlace"
    # A second in-place run starts again from the original samples.
    run_inbetween(str(shot), InbetweenOptions(prior="interp", in_place=True))
    assert [_bytes(p) for p in kept.iterdir()] == [holder_bytes]
    layering.undo(str(shot))
    assert _bytes(holder) == holder_bytes
    assert not (tmp_path / ".anymole").exists()


def test_read_only_shot_gets_a_wrapper(tmp_path, data_dir):
    shot = shot_root(tmp_path, data_dir)
    shot_bytes = _bytes(shot)
    os.chmod(shot, stat.S_IRUSR)
    try:
        report = run_inbetween(str(shot), InbetweenOptions(prior="interp"))
        assert report["wrapper"]
    finally:
        os.chmod(shot, stat.S_IRUSR | stat.S_IWUSR)
    assert _bytes(shot) == shot_bytes


def test_usdz_input_gets_a_wrapper(tmp_path, data_dir):
    import shutil

    src = tmp_path / "RiggedFigure.usdz"
    shutil.copy(data_dir / "usd" / "RiggedFigure.usdz", src)
    before = _bytes(src)
    report = run_inbetween(str(src), InbetweenOptions(prior="interp"))
    out = tmp_path / "RiggedFigure.inbetween.usda"
    assert report["wrapper"] and report["output"] == str(out)
    assert _bytes(src) == before
    stage = Usd.Stage.Open(str(out))
    anim = UsdSkel.Animation(stage.GetPrimAtPath("/RiggedFigure/Animations/skelAnim_0"))
    assert len(anim.GetRotationsAttr().GetTimeSamples()) == 31  # 0..30, filled
    assert read_provenance(anim.GetPrim()).mode == "wrapper"
    layering.undo(str(src))
    assert not out.exists() and not (tmp_path / ".anymole").exists()


def test_concurrent_run_fails_clearly(tmp_path, data_dir):
    from anymole_usd.errors import InputError

    from anymole_usd.locks import LayerLocks

    shot = shot_root(tmp_path, data_dir)
    with LayerLocks() as held:
        held.acquire(str(shot))
        with pytest.raises(InputError, match="another anymole-usd run"):
            run_inbetween(str(shot), InbetweenOptions(prior="interp"))
    assert not (tmp_path / "shot.inbetween.usda").exists()
