"""Retargeting's joint correspondence: every humanoid naming convention in the shared data, topology alone
(CesiumMan's generic names, the same skeletons with every name erased, a creature), and --map files."""
import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from anymole_usd.cli.main import cli
from anymole_usd.metric import up_vector
from anymole_usd.plugins.retarget.mapfile import load_map
from anymole_usd.plugins.retarget.naming import parse
from anymole_usd.plugins.retarget.retarget import load_source, map_skeletons, select_binding
from anymole_usd.reading import find_bindings, open_stage, read_motion, skel_space_up

LIB = "library/bvh/humanoid"
ANIMLAB = ("Hips", "LeftUpLeg", "LeftLeg", "LeftFoot", "RightUpLeg", "RightLeg", "RightFoot",
           "LeftArm", "LeftForeArm", "LeftHand", "RightArm", "RightForeArm", "RightHand", "Head")
# per source file: the source joint expected on each AnimLabSimpleMale joint above (None: the source has none)
CONVENTIONS = {
    "bvh/humanoid/bandai_namco/dataset-1_walk_normal_001.bvh":  # LaFAN1 / Bandai
        ("Hips", "UpperLeg_L", "LowerLeg_L", "Foot_L", "UpperLeg_R", "LowerLeg_R", "Foot_R",
         "UpperArm_L", "LowerArm_L", "Hand_L", "UpperArm_R", "LowerArm_R", "Hand_R", "Head"),
    "bvh/humanoid/cmu/01_01.bvh":  # CMU MotionBuilder
        ("Hips", "LeftUpLeg", "LeftLeg", "LeftFoot", "RightUpLeg", "RightLeg", "RightFoot",
         "LeftArm", "LeftForeArm", "LeftHand", "RightArm", "RightForeArm", "RightHand", "Head"),
    f"{LIB}/cmu_3dsmax_zombiehorse/142_22.bvh":  # CMU 3dsMax: LeftHip is the thigh, LeftShoulder the upper arm
        ("Hips", "LeftHip", "LeftKnee", "LeftAnkle", "RightHip", "RightKnee", "RightAnkle",
         "LeftShoulder", "LeftElbow", "LeftWrist", "RightShoulder", "RightElbow", "RightWrist", "Head"),
    f"{LIB}/cmu_daz_acrnn/martial_04.bvh":  # Daz: lShldr is the upper arm, lCollar the clavicle
        ("hip", "lThigh", "lShin", "lFoot", "rThigh", "rShin", "rFoot",
         "lShldr", "lForeArm", "lHand", "rShldr", "rForeArm", "rHand", "head"),
    f"{LIB}/creativeinquiry_bvh_examples/05_20-mb.bvh":
        ("Hips", "LeftUpLeg", "LeftLeg", "LeftFoot", "RightUpLeg", "RightLeg", "RightFoot",
         "LeftArm", "LeftForeArm", "LeftHand", "RightArm", "RightForeArm", "RightHand", "Head"),
    f"{LIB}/creativeinquiry_bvh_examples/Jackson.bvh":  # Brekel Kinect
        ("Hips", "LeftUpLeg", "LeftLeg", "LeftFoot", "RightUpLeg", "RightLeg", "RightFoot",
         "LeftArm", "LeftForeArm", "LeftHand", "RightArm", "RightForeArm", "RightHand", "Head"),
    f"{LIB}/perfume_dev/A_test.bvh":  # Biovision / MVN
        ("Hips", "LeftHip", "LeftKnee", "LeftAnkle", "RightHip", "RightKnee", "RightAnkle",
         "LeftShoulder", "LeftElbow", "LeftWrist", "RightShoulder", "RightElbow", "RightWrist", "Head"),
    f"{LIB}/mass_humanik/pirouette.bvh":  # HumanIK with _RIGMESH helpers
        tuple(f"Character1_{n}" for n in ANIMLAB),
    f"{LIB}/brynmawr_animation_toolkit/Beta_samba_dancing.bvh":  # Mixamo with a namespace
        tuple(f"Beta:{n}" for n in ANIMLAB),
    f"{LIB}/brynmawr_animation_toolkit/Warrok_WarrokThriller.bvh": ANIMLAB,
    f"{LIB}/brynmawr_animation_toolkit/Mia_standToSit.bvh": ANIMLAB,
    f"{LIB}/brynmawr_animation_toolkit/SIB01-story01-bvh.bvh": ANIMLAB,
    f"{LIB}/brynmawr_animation_toolkit/Nikki_Lower_Nikki.Nikki_Cal_20.bvh":  # legs only
        ("root", "lfemur", "ltibia", "lfoot", "rfemur", "rtibia", "rfoot") + (None,) * 7,
    "usd/synthetic/skeleton.usda":  # the UsdSkel example: LLeg is the thigh
        ("Hips", "LLeg", "LKnee", "LFoot", "RLeg", "RKnee", "RFoot",
         "LArm", "LElbow", "LHand", "RArm", "RElbow", "RHand", "Head"),
    "usd/AnimLabSimpleMale.usd": ANIMLAB,
}


def _target(data_dir):
    stage = open_stage(data_dir / "usd" / "AnimLabSimpleMale.usd")
    b = select_binding(find_bindings(stage), None, "t", need_animation=False)
    return b.skeleton, up_vector(skel_space_up(stage, b.skeleton_path))


def _clip(path):
    if path.suffix in (".usd", ".usda", ".usdz"):
        stage = open_stage(path)
        b = select_binding(find_bindings(stage), None, str(path), need_animation=False)
        motion = read_motion(stage, b) if b.animation_path else None
        return b.skeleton, motion, up_vector(skel_space_up(stage, b.skeleton_path))
    clip = load_source(str(path))
    return clip.skeleton, clip.motion, clip.up


def _by_short_name(mapping, skel_s, skel_t):
    return {skel_t.short_names[t]: skel_s.short_names[s] for s, t in mapping.pairs.items()}


@pytest.mark.parametrize("source", sorted(CONVENTIONS))
def test_every_humanoid_convention_maps_onto_animlab(data_dir, source):
    skel_t, up_t = _target(data_dir)
    skel_s, motion, up_s = _clip(data_dir / source)
    mapping = map_skeletons(skel_s, skel_t, source_motion=motion, source_up=up_s, target_up=up_t)
    got = _by_short_name(mapping, skel_s, skel_t)
    for target_joint, expected in zip(ANIMLAB, CONVENTIONS[source]):
        assert got.get(target_joint) == expected, (source, target_joint, got.get(target_joint), expected)
    # helpers are never matched, and every chain has a confidence in (0, 1]
    assert not any(parse(skel_s.short_names[s]).helper for s in mapping.pairs)
    assert all(0.0 < c.confidence <= 1.0 for c in mapping.chains)


def test_names_parse_across_conventions():
    cases = {"mixamorig:LeftUpLeg": (1, {"upper"}), "Beta:RightForeArm": (-1, {"lower"}),
             "Character1_LeftToeBase": (1, {"digit"}), "lShin": (1, {"lower"}), "Bip01_R_Calf__yE2": (-1, {"lower"}),
             "b_LeftUpperArm_09": (1, {"upper"}), "front_leg_foot_r": (-1, {"extremity"}),
             "DEF-thigh.L": (1, {"upper"}), "LeftHip": (1, {"upper", "girdle"}), "hip": (0, {"hips"})}
    for name, (side, roles) in cases.items():
        n = parse(name)
        assert (n.side, set(n.roles)) == (side, roles), name
    assert parse("L_Femur_RIGMESH").helper and parse("ik_foot_root").helper and not parse("LeftFoot").helper


def _anonymous(skeleton):
    """The same skeleton with every name erased (j0, j1, ...): only topology and geometry are left."""
    names = [f"j{i}" for i in range(skeleton.num_joints)]
    paths = []
    for i, p in enumerate(skeleton.parents):
        paths.append(names[i] if p < 0 else paths[p] + "/" + names[i])
    return replace(skeleton, joints=paths, joint_names=None)


def test_cesiumman_maps_by_topology(data_dir):
    skel_t, up_t = _target(data_dir)
    stage = open_stage(data_dir / "usd" / "CesiumMan.usdz")
    b = find_bindings(stage)[0]
    cesium, up_c = b.skeleton, up_vector(skel_space_up(stage, b.skeleton_path))
    expected = {"LeftUpLeg": "leg_joint_L_1", "LeftLeg": "leg_joint_L_2", "LeftFoot": "leg_joint_L_3",
                "LeftToe": "leg_joint_L_5", "RightFoot": "leg_joint_R_3", "LeftArm": "Skeleton_arm_joint_L__4_",
                "LeftForeArm": "Skeleton_arm_joint_L__3_", "LeftHand": "Skeleton_arm_joint_L__2_",
                "RightHand": "Skeleton_arm_joint_R__3_", "Head": "Skeleton_neck_joint_2",
                "Hips": "Skeleton_torso_joint_1"}
    mapping = map_skeletons(skel_t, cesium, source_up=up_t, target_up=up_c)
    got = {skel_t.short_names[s]: cesium.short_names[t] for s, t in mapping.pairs.items()}
    assert {k: got.get(k) for k in expected} == expected
    legs = [c for c in mapping.chains if c.name.endswith("leg")]
    assert legs and all(c.method == "topology" and c.confidence <= 0.85 for c in legs)
    # without a single name (no L/R either), sides come from the rest geometry alone
    anon = _anonymous(cesium)
    mapping = map_skeletons(skel_t, anon, source_up=up_t, target_up=up_c)
    got = {skel_t.short_names[s]: cesium.short_names[t] for s, t in mapping.pairs.items()}
    for k in ("Hips", "LeftUpLeg", "LeftFoot", "RightFoot", "LeftHand", "RightHand", "Head"):
        assert got.get(k) == expected[k], (k, got.get(k))


def test_creature_maps_legs_tail_and_head(data_dir):
    horse = load_source(str(data_dir / "library/gltf/nonhumanoid/mesh2motion/horse-animations.glb"), animation="Walk")
    fox = load_source(str(data_dir / "gltf" / "Fox.glb"), animation="Walk")
    for target in (fox.skeleton, _anonymous(fox.skeleton)):
        mapping = map_skeletons(horse.skeleton, target, source_motion=horse.motion, target_motion=fox.motion,
                                source_up=horse.up, target_up=fox.up)
        got = {fox.skeleton.short_names[t]: horse.skeleton.short_names[s] for s, t in mapping.pairs.items()}
        assert got["b_Hip_01"] == "hips"
        assert got["b_Head_05"] == "head"
        assert got["b_Tail03_014"].startswith("tail_")
        assert got["b_LeftFoot02_018"].startswith("back_leg_") and got["b_LeftFoot02_018"].endswith("_l")
        assert got["b_RightFoot02_022"].startswith("back_leg_") and got["b_RightFoot02_022"].endswith("_r")
        assert got["b_LeftHand_011"].startswith("front_leg_") and got["b_LeftHand_011"].endswith("_l")
        assert got["b_RightHand_08"].startswith("front_leg_") and got["b_RightHand_08"].endswith("_r")


# --------------------------------------------------------------------------- --map files

def _bandai(data_dir):
    return data_dir / "bvh/humanoid/bandai_namco/dataset-1_walk_normal_001.bvh"


def test_map_file_overrides_and_drops(data_dir, tmp_path):
    skel_t, up_t = _target(data_dir)
    clip = load_source(str(_bandai(data_dir)))
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"Spine": "Spine", "Hand_L": None}))
    overrides = load_map(str(path), clip.skeleton, skel_t)
    mapping = map_skeletons(clip.skeleton, skel_t, source_motion=clip.motion, source_up=clip.up, target_up=up_t,
                            overrides=overrides)
    got = _by_short_name(mapping, clip.skeleton, skel_t)
    assert got["Spine"] == "Spine" and "Spine1" not in got  # the automatic Spine -> Spine1 is replaced
    assert "LeftHand" not in got and got["RightHand"] == "Hand_R"
    assert any(c.method == "user" and c.confidence == 1.0 for c in mapping.chains)
    auto = map_skeletons(clip.skeleton, skel_t, source_motion=clip.motion, source_up=clip.up, target_up=up_t)
    assert _by_short_name(auto, clip.skeleton, skel_t)["Spine1"] == "Spine"


@pytest.mark.parametrize("content, words", [
    ('{"Hips": "Hips", "Spline": "Spine"}', ['"Spline"', "does not exist", "did you mean Spine"]),
    ('{"Hips": "Hips", "Spine": "Spyne"}', ['"Spine": "Spyne"', "target joint 'Spyne' does not exist"]),
    ('{"Hips": "LeftUpLeg", "UpperLeg_L": "Hips"}', ["cycle", "Hips", "UpperLeg_L"]),
    ('{"Hand_L": "LeftHand", "Hand_R": "LeftHand"}', ['"Hand_R"', "already the target"]),
    ('{"Hips": "Hips",}', ["not valid JSON", "line 1"]),
    ('["Hips", "Hips"]', ["must hold a JSON object"]),
])
def test_bad_map_files_exit_2_naming_the_entry(data_dir, tmp_path, content, words):
    import shutil

    target = tmp_path / "male.usd"
    shutil.copyfile(data_dir / "usd" / "AnimLabSimpleMale.usd", target)
    path = tmp_path / "bad.json"
    path.write_text(content)
    for extra in (["--show-map"], []):
        r = CliRunner().invoke(cli, ["retarget", str(_bandai(data_dir)), "--to", str(target), "--map", str(path),
                                     *extra])
        assert r.exit_code == 2, r.output
        line = r.output.strip().splitlines()[-1]
        assert str(path) in line and all(w in line for w in words), line
    assert not list(tmp_path.glob("*.usda"))  # nothing written


def test_show_map_writes_nothing_and_prints_confidences(data_dir, tmp_path):
    import shutil

    target = tmp_path / "male.usd"
    shutil.copyfile(data_dir / "usd" / "AnimLabSimpleMale.usd", target)
    before = sorted(p.name for p in tmp_path.iterdir())
    r = CliRunner().invoke(cli, ["retarget", str(_bandai(data_dir)), "--to", str(target), "--show-map", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    chains = {c["chain"]: c for c in report["chains"]}
    assert {"left leg", "right leg", "left arm", "right arm", "head"} <= set(chains)
    assert all(0 < c["confidence"] <= 1 for c in chains.values())
    assert report["joints"]["joint_Root/Hips/UpperLeg_L"] == "Root/Hips/LeftUpLeg"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    text = CliRunner().invoke(cli, ["retarget", str(_bandai(data_dir)), "--to", str(target), "--show-map"]).output
    assert "left leg: confidence" in text and "UpperLeg_L -> LeftUpLeg" in text
    # the printed mapping is a valid map file
    path = tmp_path / "printed.json"
    path.write_text(json.dumps(report))
    r = CliRunner().invoke(cli, ["retarget", str(_bandai(data_dir)), "--to", str(target), "--show-map", "--json",
                                 "--map", str(path)])
    assert r.exit_code == 0 and json.loads(r.output)["joints"] == report["joints"]
