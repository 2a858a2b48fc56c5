"""Keyframe-conditioned video families (Wan VACE, Wan first-last-frame, LTX-Video) on tiny random weights.

Each family is saved as a diffusers folder (safetensors, no tokenizer files) by
the real pipeline classes, picked from its model_index.json, and run end to end
by `inbetween --video-model DIR` on a real shot (CesiumMan): render ->
ICAdapt (image-only LoRA) -> generation -> estimator -> mimicking. The frames
are meaningless; what is checked is that every stage runs with the real loading
code and classes, the LoRA touches only the main blocks' projections and is
cached, and the result composes like any other prior's.
"""
import json

import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

from anymole_usd.cli.main import cli  # noqa: E402
from anymole_usd.errors import InputError  # noqa: E402

from shots import CONTEXT, KEYS, shot_root  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAMILIES = ("wan-vace", "wan-flf2v", "ltx")
FAST = ["--param", "icadapt_steps=2", "--param", "steps=1", "--param", "guidance_scale=1", "--param", "window=17",
        "--param", "estimator_steps=4", "--param", "size=64x64", "--param", "lambda_img=0",
        "--param", "iterations=2", "--param", "lora_rank=2"]


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch):
    for var in ("ANYMOLE_USD_VIDEO_MODEL", "ANYMOLE_USD_CAPTION_MODEL", "ANYMOLE_USD_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from anymole_usd.plugins.video.tiny_models import save_tiny_family

    root = tmp_path_factory.mktemp("models")
    return {f: save_tiny_family(root / f, f) for f in FAMILIES}


@pytest.mark.parametrize("family", FAMILIES)
def test_inbetween_with_each_family(family, tiny, tmp_path, data_dir):
    from anymole_usd.reading import find_bindings, open_stage, read_motion

    shot = shot_root(tmp_path, data_dir)
    cache = tmp_path / "cache"
    r = CliRunner().invoke(cli, ["inbetween", str(shot), "--video-model", str(tiny[family]), "--json",
                                 "--keep-artifacts", str(tmp_path / "art"), *FAST],
                           catch_exceptions=False, env={"ANYMOLE_USD_CACHE": str(cache)})
    assert r.exit_code == 0, r.output
    (a,) = json.loads(r.output[r.output.index("{"):])["animations"]
    assert a["prior"] == "video" and a["frames_to_fill"] == 22
    assert len(list((tmp_path / "art" / "video").glob("*.png"))) == 14  # the 15 fps grid: 7 per gap
    loras = list(cache.glob("lora-*.safetensors"))
    assert len(loras) == 1  # ICAdapt's delta, cached
    stage = open_stage(shot)
    (b,) = find_bindings(stage)
    m = read_motion(stage, b)
    assert m.num_frames == 48 and np.isfinite(m.rotations).all()
    (tmp_path / "orig").mkdir()
    o_stage = open_stage(shot_root(tmp_path / "orig", data_dir))
    (ob,) = find_bindings(o_stage)
    np.testing.assert_array_equal(m.at_times(CONTEXT + KEYS).rotations, read_motion(o_stage, ob).rotations)


def test_lora_adapts_only_the_main_blocks_and_round_trips(tiny, tmp_path):
    from anymole_usd.plugins.video.lora import load_lora, lora_icadapt, save_lora
    from anymole_usd.plugins.video.model_loading import load_video_model

    model = load_video_model(str(tiny["wan-vace"]), device="cpu")
    net = model.pipe.transformer
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    targets = model.lora_targets("transformer")
    assert targets and all(t.startswith("blocks.") for t in targets)  # never vace_blocks, embedders, patch embed
    assert any(t.endswith("attn1.to_q") for t in targets) and any(t.endswith("ffn.net.2") for t in targets)
    frames = np.random.default_rng(0).integers(0, 255, (3, 32, 48, 3), dtype=np.uint8)
    state = lora_icadapt(model, frames, "a robot", steps=3, lr=1e-2, rank=2)
    assert state and all("lora_" in k for k in state)
    for n, p in net.named_parameters():  # the base weights never move
        if "lora_" not in n:
            assert torch.equal(p, before[n.replace(".base_layer", "")]), n
    assert any(float(v.abs().sum()) > 0 for k, v in state.items() if "lora_B" in k)  # B starts at zero
    path = save_lora(state, tmp_path / "l.safetensors", rank=2, targets=model.lora["targets"])
    other = load_video_model(str(tiny["wan-vace"]), device="cpu")
    load_lora(other, path)
    known = {float(t): frames[t % 3] for t in (0, 2, 4, 12)}
    from anymole_usd.plugins.video.keyed_generation import generate_keyed_video

    a = generate_keyed_video(model, known, [6.0, 8.0, 10.0], 30.0, "a robot", window=9, steps=1, guidance_scale=1)
    b = generate_keyed_video(other, known, [6.0, 8.0, 10.0], 30.0, "a robot", window=9, steps=1, guidance_scale=1)
    assert all(np.array_equal(a[t], b[t]) for t in a) and a[8.0].shape == (32, 48, 3)
    with pytest.raises(InputError, match="not an ICAdapt LoRA"):
        from safetensors.torch import save_file

        save_file({"x": torch.zeros(1)}, str(tmp_path / "bad.safetensors"))
        load_lora(other, tmp_path / "bad.safetensors")


def test_family_from_model_index_and_safe_loading(tiny, tmp_path):
    import shutil

    from anymole_usd.errors import ModelUnavailableError
    from anymole_usd.plugins.video.families import model_family
    from anymole_usd.plugins.video.model_loading import load_video_model

    assert [model_family(tiny[f]) for f in FAMILIES] == list(FAMILIES)
    pickled = shutil.copytree(tiny["ltx"], tmp_path / "pickled")
    for f in (pickled / "transformer").glob("*.safetensors"):
        f.rename(f.with_name("diffusion_pytorch_model.bin"))
    with pytest.raises(ModelUnavailableError, match="only pickle weights"):
        load_video_model(str(pickled))
    odd = shutil.copytree(tiny["ltx"], tmp_path / "odd")
    index = json.loads((odd / "model_index.json").read_text())
    (odd / "model_index.json").write_text(json.dumps({**index, "_class_name": "HunyuanVideoPipeline"}))
    with pytest.raises(ModelUnavailableError, match="unsupported pipeline 'HunyuanVideoPipeline'"):
        load_video_model(str(odd))
    index["transformer"] = ["my_package", "Evil"]
    (odd / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ModelUnavailableError, match="does not load"):
        load_video_model(str(odd))


def test_windows_follow_the_job_layout(tiny):
    from anymole_usd.plugins.video.keyed_generation import video_slots

    known = list(range(0, 61)) + [90, 120]
    fill = [float(t) for t in range(62, 120, 2) if t != 90]
    times, known_flags, step = video_slots(known, fill)
    assert step == 2.0 and times[0] == 0 and times[-1] == 120
    assert np.all(np.diff(times) == 2)  # the context thinned to the fill rate
    assert (~known_flags).sum() == len(fill)
