"""The video prior on tiny random-weight models of the real diffusers/transformers classes (CPU, no network)."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from anymole_usd.errors import InputError, ModelUnavailableError  # noqa: E402
from anymole_usd import settings as video_config  # noqa: E402
from anymole_usd.plugins.video.generation import (  # noqa: E402
    guidance_times, stage1_slots, stage2_segments, two_stage_generation)
from anymole_usd.plugins.video.icadapt import (  # noqa: E402
    EMBEDDING, FROZEN, TEMPORAL, TRAINABLE, _roles_by_type, context_clips, icadapt, load_delta,
    named_parameters, parameter_roles, save_delta)
from anymole_usd.plugins.video.inpainting import ALWAYS, FREE, NOISY, noise_levels, sample_window  # noqa: E402
from anymole_usd.plugins.video.model_loading import load_video_model  # noqa: E402
from anymole_usd.plugins.video.tiny_models import save_tiny_model, tiny_components, tiny_video_model  # noqa: E402
from anymole_usd.plugins.video.windows import GUIDE, KEY, UNKNOWN, plan_windows  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch):
    """No user config, env var or network can leak into a test."""
    for var in ("ANYMOLE_USD_VIDEO_MODEL", "ANYMOLE_USD_CAPTION_MODEL", "ANYMOLE_USD_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.chdir(tmp_path)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny():
    return tiny_video_model(seed=0)


def frames(n, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------- ICAdapt

def test_roles_follow_module_types_not_names(tiny):
    from diffusers.models.attention import BasicTransformerBlock, TemporalBasicTransformerBlock
    from diffusers.models.embeddings import TimestepEmbedding
    from diffusers.models.resnet import AlphaBlender, ResnetBlock2D, TemporalResnetBlock

    roles = parameter_roles(tiny)
    expect = {TemporalBasicTransformerBlock: TEMPORAL, TemporalResnetBlock: TEMPORAL, AlphaBlender: TEMPORAL,
              TimestepEmbedding: EMBEDDING, BasicTransformerBlock: TRAINABLE, ResnetBlock2D: TRAINABLE}
    seen = Counter()
    for prefix, mod in tiny.unet.named_modules():
        for cls, role in expect.items():
            if type(mod) is cls:
                seen[cls] += 1
                for n, _ in mod.named_parameters():
                    assert roles[f"unet.{prefix}.{n}"] == role, (prefix, n)
    assert all(seen[c] > 0 for c in expect), seen
    # fps / motion / noise-augmentation ids and the diffusion timestep are embedded by frozen modules
    assert roles["unet.add_embedding.linear_1.weight"] == EMBEDDING
    assert roles["unet.time_embedding.linear_1.weight"] == EMBEDDING
    assert roles["image_encoder.visual_projection.weight"] == TRAINABLE
    assert all(r == FROZEN for n, r in roles.items() if n.startswith("vae."))
    assert all(r == FROZEN for n, r in roles.items()
               if n.startswith("image_encoder.") and "visual_projection" not in n)

    # A module tree whose names say nothing: roles still come from the types.
    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.foo = TemporalResnetBlock(32, 32, temb_channels=8)
            self.bar = TimestepEmbedding(4, 8)
            self.baz = torch.nn.Linear(2, 2)

    odd = _roles_by_type(Odd(), TRAINABLE)
    assert {n.split(".")[0]: r for n, r in odd.items()} == {"foo": TEMPORAL, "bar": EMBEDDING, "baz": TRAINABLE}


def test_context_clips_strides_and_fps():
    clips = context_clips(frames(40, 8), 30.0, length=16, strides=(1, 2, 3))
    fps = Counter(c.fps for c in clips)
    assert fps == Counter({30.0: 25, 15.0: 10})  # a stride-3 clip needs 46 frames
    assert all(len(c.frames) == 16 for c in clips)
    clip = next(c for c in clips if c.fps == 15.0)
    src = frames(40, 8)
    assert np.array_equal(clip.frames, src[0:31:2])


def test_icadapt_trains_only_trainable_and_delta_round_trips(tmp_path):
    model = tiny_video_model(seed=0)
    before = {n: p.detach().clone() for n, p in named_parameters(model).items()}
    clips = context_clips(frames(6), 30.0, length=4, strides=(1, 2))
    seen_fps = []
    orig = model.added_time_ids
    model.added_time_ids = lambda fps, batch=1: (seen_fps.append(fps), orig(fps, batch))[1]
    result = icadapt(model, clips, steps=3, lr=1e-3, seed=1)
    assert len(result.losses) == 3 and all(np.isfinite(result.losses))
    assert set(seen_fps) <= {30.0, 15.0} and seen_fps  # each clip's rate reaches the fps conditioning
    after = named_parameters(model)
    roles = parameter_roles(model)
    frozen = [n for n, r in roles.items() if r != TRAINABLE]
    assert frozen and all(torch.equal(before[n], after[n]) for n in frozen)
    changed = {n for n in result.trainable if not torch.equal(before[n], after[n])}
    assert len(changed) > 0.5 * len(result.trainable)
    assert set(result.delta) == changed  # the delta holds exactly the changed trainable parameters
    assert all(not p.requires_grad for p in after.values())

    path = save_delta(result.delta, tmp_path / "adapted.safetensors", base_model=model.model_id)
    full = sum(p.numel() for p in after.values())
    assert sum(v.numel() for v in result.delta.values()) < 0.6 * full

    fresh = tiny_video_model(seed=0)
    names = load_delta(fresh, path)
    assert set(names) == changed
    restored = named_parameters(fresh)
    assert all(torch.equal(restored[n], after[n]) for n in after)

    # A delta that would touch a frozen (temporal) parameter is refused.
    bad = dict(result.delta)
    temporal = next(n for n, r in roles.items() if r == TEMPORAL)
    bad[temporal] = after[temporal].detach().clone()
    save_delta(bad, tmp_path / "bad.safetensors")
    with pytest.raises(InputError, match="frozen"):
        load_delta(tiny_video_model(seed=0), tmp_path / "bad.safetensors")


# ---------------------------------------------------------------------------- inpainting

def test_noise_levels_match_ddim_timesteps_and_span_euler():
    ddim = tiny_components(scheduler="ddim")["scheduler"]
    ddim.set_timesteps(10)
    assert np.allclose(noise_levels(ddim, ddim.timesteps), ddim.timesteps.numpy(), atol=1e-3)
    euler = tiny_components(scheduler="euler")["scheduler"]
    euler.set_timesteps(10)
    lv = noise_levels(euler, euler.timesteps)
    assert np.all(np.diff(lv) <= 0) and lv[0] > 990 and lv[-1] < 50


@pytest.mark.parametrize("scheduler", ["euler", "ddim"])
def test_inpainting_imposes_noised_encodings_at_every_step(scheduler):
    model = tiny_video_model(seed=0, scheduler=scheduler)
    imgs = frames(6, seed=3)
    modes = np.array([ALWAYS, NOISY, FREE, FREE, NOISY, ALWAYS])
    clean = model.encode(imgs).float()
    steps = []

    def check(info):
        t = model.scheduler.timesteps[info.step]
        expected = model.scheduler.add_noise(clean, info.known_noise, t.reshape(1).expand(len(clean)))
        want = (modes == ALWAYS) | ((modes == NOISY) & (info.level > 750))
        assert np.array_equal(info.pasted, want)
        for k in range(len(imgs)):
            same = torch.allclose(info.latents[k], expected[k], atol=1e-5, rtol=1e-5)
            assert same == bool(want[k]), (info.step, k, info.level)
        if scheduler == "ddim":
            assert abs(info.level - float(t)) < 1e-3  # DDIM timesteps are the 0..1000 scale itself
        steps.append(info.level)

    out = sample_window(model, imgs, modes, fps=5.0, num_inference_steps=6, guidance_scale=1.5,
                        context_threshold=750.0, generator=torch.Generator().manual_seed(0), on_step=check)
    assert len(steps) == 6
    assert any(v > 750 for v in steps) and any(v <= 750 for v in steps)  # both regimes were exercised
    assert out.shape == imgs.shape and out.dtype == np.uint8


def test_context_threshold_none_imposes_context_always(tiny):
    modes = np.array([NOISY, FREE, ALWAYS])
    pasted = []
    sample_window(tiny, frames(3), modes, fps=5.0, num_inference_steps=3, guidance_scale=1.0,
                  context_threshold=None, on_step=lambda i: pasted.append(i.pasted))
    assert all(np.array_equal(p, [True, False, True]) for p in pasted)


# ---------------------------------------------------------------------------- window plans

def _check_plan(states, windows, length):
    states = list(states)
    generated = Counter()
    for w in windows:
        assert w.end - w.start + 1 <= length
        assert any(states[i] != UNKNOWN for i in w.slots)  # every window has something to inpaint
        for i in w.generate:
            assert states[i] == UNKNOWN
            generated[i] += 1
            states[i] = GUIDE
    assert UNKNOWN not in states and all(v == 1 for v in generated.values())


def test_anymole_layout_reproduces_official_windows():
    """30 fps stage, 2 s context, keys at 3 s and 4 s: the official code's 16-frame windows."""
    known = np.concatenate([np.arange(61.0), [90.0, 120.0]])
    keys = np.array([90.0, 120.0])
    fill = np.concatenate([60 + 2.0 * np.arange(1, 15), 90 + 2.0 * np.arange(1, 15)])
    times, states = stage1_slots(known, keys, fill, step=6.0)
    windows = plan_windows(states, 16)
    _check_plan(states, windows, 16)
    assert [times[w.slots].tolist() for w in windows] == [list(np.arange(0, 91, 6.0)), list(np.arange(30, 121, 6.0))]
    assert [times[w.generate].tolist() for w in windows] == [[66, 72, 78, 84], [96, 102, 108, 114]]
    coarse = times[[s == UNKNOWN for s in states]]
    segs = stage2_segments(known, keys, fill, coarse, 2.0)
    assert [s[0].tolist() for s in segs] == [list(np.arange(60, 91, 2.0)), list(np.arange(90, 121, 2.0))]
    for seg_times, seg_states in segs:
        assert seg_states[0] in (KEY, GUIDE) and seg_states[-1] == KEY
        assert [seg_times[i] for i, s in enumerate(seg_states) if s == GUIDE and 0 < i < 15] == \
            [seg_times[0] + 6 * k for k in (1, 2, 3, 4)]


@pytest.mark.parametrize("layout", ["keys-only", "long-gap", "many-keys", "extrapolate", "uneven"])
def test_window_plans_cover_every_gap(layout):
    fps = 30.0
    if layout == "keys-only":
        known, keys = np.array([0.0, 30.0, 60.0]), np.array([0.0, 30.0, 60.0])
    elif layout == "long-gap":
        known, keys = np.concatenate([np.arange(31.0), [300.0]]), np.array([300.0])
    elif layout == "many-keys":
        known = np.concatenate([np.arange(61.0), 60 + 30.0 * np.arange(1, 9)])
        keys = 60 + 30.0 * np.arange(1, 9)
    elif layout == "extrapolate":
        known, keys = np.concatenate([np.arange(31.0), [60.0]]), np.array([60.0])
    else:
        known, keys = np.concatenate([np.arange(24.0), [37.0, 81.0, 90.0]]), np.array([37.0, 81.0, 90.0])
    end = 120.0 if layout == "extrapolate" else known.max()
    fill = np.setdiff1d(np.arange(known.min(), end + 1, 2.0), known)
    times, states = stage1_slots(known, keys, fill, step=fps / 5)
    windows = plan_windows(states, 16)
    _check_plan(states, windows, 16)
    coarse = times[[s == UNKNOWN for s in states]]
    assert np.all(np.diff(times) > 0)
    # the coarse video runs at about 5 fps (6 time codes) over every time to fill
    grid = np.sort(np.concatenate([coarse, guidance_times(known, keys, 6.0)]))
    assert np.diff(grid).max() <= 6.0 * 1.5 + 1e-6
    assert np.abs(fill[:, None] - grid[None]).min(axis=1).max() <= 4.5
    segs = stage2_segments(known, keys, fill, coarse, 2.0)
    slots = np.concatenate([t for t, _ in segs])
    assert np.abs(fill[:, None] - slots[None]).min(axis=1).max() < 1e-9  # every fill time is a fine slot
    for t, st in segs:
        assert np.diff(t).max() <= 2.0 * 1.5 + 1e-9  # 15 fps, evenly spaced
        assert all(s != UNKNOWN for x, s in zip(t, st) if np.isclose(known, x).any())
        _check_plan(st, plan_windows(st, 16), 16)
    if layout == "many-keys":
        assert len(windows) == 8  # one coarse window per 1 s gap: time grows linearly with the keys
    if layout == "long-gap":
        assert len(windows) >= 3


# ---------------------------------------------------------------------------- generation

def test_two_stage_generation_frame_counts_and_times(tiny):
    fps = 15.0
    imgs = frames(50, size=14, seed=7)  # 14 px is not a multiple of 4: exercises resizing both ways
    known = {float(t): imgs[t] for t in range(0, 16)}
    known[30.0], known[45.0] = imgs[30], imgs[45]
    fill = [float(t) for t in list(range(16, 30)) + list(range(31, 45))]
    levels = []
    res = two_stage_generation(tiny, known, fill, fps, "a robot", num_inference_steps=2, guidance_scale=1.0,
                               window=8, seed=0, step_callback=lambda run, im, modes, info: levels.append(run.stage))
    assert sorted(res.frames) == fill
    assert all(f.shape == (14, 14, 3) and f.dtype == np.uint8 for f in res.frames.values())
    assert sorted(res.coarse) == [18.0, 21.0, 24.0, 27.0, 33.0, 36.0, 39.0, 42.0]
    s1 = [w for w in res.windows if w.stage == 1]
    s2 = [w for w in res.windows if w.stage == 2]
    assert len(s1) == 2 and all(len(w.times) <= 8 for w in res.windows)
    assert np.allclose(np.concatenate([w.generate for w in s1]), sorted(res.coarse))
    assert all(np.allclose(np.diff(w.times), 3.0) for w in s1)  # 5 fps
    assert all(np.allclose(np.diff(w.times), 1.0) for w in s2)  # 15 fps
    gen2 = np.sort(np.concatenate([w.generate for w in s2]))
    assert np.allclose(gen2, sorted(set(fill) - set(res.coarse)))
    assert Counter(levels) == Counter({1: 2 * len(s1), 2: 2 * len(s2)})

    again = two_stage_generation(tiny, known, fill, fps, num_inference_steps=2, guidance_scale=1.0, window=8, seed=0)
    assert all(np.array_equal(again.frames[t], res.frames[t]) for t in fill)  # seeded: reproducible

    single = two_stage_generation(tiny, known, fill[:5], fps, num_inference_steps=1, guidance_scale=1.0,
                                  window=8, two_stage=False)
    assert sorted(single.frames) == fill[:5] and not single.coarse
    assert all(w.stage == 1 and np.allclose(np.diff(w.times), 1.0) for w in single.windows)


# ---------------------------------------------------------------------------- loading and configuration

def test_config_resolution_order(tmp_path, monkeypatch):
    home = tmp_path / "xdg" / "anymole-usd"
    home.mkdir(parents=True)
    (home / "config.toml").write_text('[video]\nmodel = "from-home"\n')
    assert video_config.resolve("video.model").value == "from-home"
    (tmp_path / "anymole-usd.toml").write_text('[video]\nmodel = "from-cwd"\n')
    assert video_config.resolve("video.model").source.startswith("config ")
    assert video_config.resolve("video.model").value == "from-cwd"
    monkeypatch.setenv("ANYMOLE_USD_VIDEO_MODEL", "from-env")
    assert video_config.resolve("video.model").value == "from-env"
    assert video_config.resolve("video.model", "from-option").value == "from-option"
    (tmp_path / "anymole-usd.toml").write_text("[video\nmodel = 1\n")
    monkeypatch.delenv("ANYMOLE_USD_VIDEO_MODEL")
    with pytest.raises(InputError, match="anymole-usd.toml"):
        video_config.resolve("video.model")


def test_missing_model_gives_one_helpful_line(tmp_path):
    for model, needle in [(None, "no video model configured"), (str(tmp_path / "nope"), "no such folder"),
                          ("someone/not-cached-svd", "not in the local Hugging Face cache")]:
        with pytest.raises(ModelUnavailableError) as err:
            load_video_model(model)
        msg = str(err.value)
        assert "\n" not in msg and needle in msg
        assert "--video-model" in msg and "ANYMOLE_USD_VIDEO_MODEL" in msg and "config.toml" in msg
        if model:
            assert repr(model) in msg


def test_real_loading_of_a_saved_tiny_model(tmp_path, monkeypatch):
    folder = save_tiny_model(tmp_path / "tiny-svd", seed=0)
    monkeypatch.setenv("ANYMOLE_USD_VIDEO_MODEL", str(folder))  # resolved through the environment
    model = load_video_model(device="cpu")
    ref = tiny_components(seed=0)
    for name in ("unet", "vae", "image_encoder"):
        got, want = model.modules()[name].state_dict(), ref[name].state_dict()
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert type(model.scheduler).__name__ == "EulerDiscreteScheduler"
    assert model.normalization.size == (32, 32) and model.model_id == str(folder)


def test_pickle_only_folder_is_refused_before_unpickling(tmp_path, monkeypatch):
    folder = save_tiny_model(tmp_path / "bin-only", safe_serialization=False)
    assert list((folder / "unet").glob("*.bin")) and not list((folder / "unet").glob("*.safetensors"))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load must never run"))
    with pytest.raises(ModelUnavailableError, match="safetensors only"):
        load_video_model(str(folder))
    cfg = json.loads((tmp_path / "bin-only" / "unet" / "config.json").read_text())
    cfg["_class_name"] = "UNet3DConditionModel"
    folder2 = save_tiny_model(tmp_path / "other-family")
    (folder2 / "unet" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelUnavailableError, match="unsupported model family"):
        load_video_model(str(folder2))


def test_plugin_generates_and_caches(tmp_path, monkeypatch):
    from anymole_usd import registry
    from anymole_usd.plugins.video import generation

    folder = save_tiny_model(tmp_path / "m")
    cls = registry.load("video_sources", "diffusion")
    prior = cls(model=str(folder), device="cpu", steps=1, guidance_scale=1.0, window=8, cache_dir=str(tmp_path / "c"))
    imgs = frames(8, seed=2)
    known = {0.0: imgs[0], 1.0: imgs[1], 2.0: imgs[2], 6.0: imgs[6]}
    calls = []
    out = prior.generate(known, [3.0, 4.0, 5.0], 15.0, progress=lambda m, f: calls.append(f))
    assert sorted(out) == [3.0, 4.0, 5.0] and calls and calls[-1] == pytest.approx(1.0)
    monkeypatch.setattr(generation, "generate_inbetween_video", lambda *a, **k: pytest.fail("cache missed"))
    again = prior.generate(known, [3.0, 4.0, 5.0], 15.0)
    assert all(np.array_equal(again[t], out[t]) for t in out)
    with pytest.raises(InputError, match="differ in size"):
        prior.generate({0.0: imgs[0], 6.0: imgs[6][:8]}, [3.0], 15.0)


# ---------------------------------------------------------------------------- captioning

def test_fixed_prompt_from_prim_name():
    from anymole_usd.plugins.video.caption import FixedPromptCaptioner, character_name, load_captioner

    assert character_name("/World/CesiumMan/Skeleton/Anim") == "cesium man"
    assert character_name("/Root/red_fox_01/Armature/Animation") == "red fox"
    assert character_name("/Skel/Anim") == "character"
    cap = load_captioner()
    assert isinstance(cap, FixedPromptCaptioner) and "cesium man" in cap.caption([], "/CesiumMan/Anim")


def test_transformers_captioner_real_loading(tmp_path, monkeypatch):
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    from anymole_usd.plugins.video.caption import TransformersCaptioner, load_captioner

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "a", "robot", "walks", "fox", "runs"]
    (tmp_path / "vocab.txt").write_text("\n".join(words))
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
                              tokenizer=BertTokenizer(str(tmp_path / "vocab.txt"), bos_token="[DEC]"))
    torch.manual_seed(0)
    cfg = BlipConfig(vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                                        image_size=32, patch_size=8),
                     text_config=dict(vocab_size=len(words), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                      num_attention_heads=4, max_position_embeddings=64, bos_token_id=5,
                                      pad_token_id=0, sep_token_id=3), projection_dim=32)
    folder = tmp_path / "tiny-blip"
    BlipForConditionalGeneration(cfg).save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    monkeypatch.setenv("ANYMOLE_USD_CAPTION_MODEL", str(folder))
    cap = load_captioner(max_new_tokens=4, device="cpu")
    assert isinstance(cap, TransformersCaptioner)
    imgs = list(frames(3))
    text = cap.caption(imgs, "/Robot/Anim")
    proc, model = cap._load()
    assert type(model).__name__ == "BlipForConditionalGeneration"
    ids = model.generate(**proc(images=imgs[1], return_tensors="pt"), max_new_tokens=4)  # greedy: deterministic
    expected = proc.batch_decode(ids, skip_special_tokens=True)[0].strip()
    assert text == (expected or "a 3D rendered robot moving naturally, full body, plain background, static camera")
    monkeypatch.setenv("ANYMOLE_USD_CAPTION_MODEL", str(tmp_path / "missing"))
    with pytest.raises(ModelUnavailableError, match="caption model"):
        load_captioner().caption(list(frames(1)))


def test_plugin_adapt_caches_the_delta(tmp_path, monkeypatch):
    from anymole_usd.plugins.video import icadapt as icadapt_module
    from anymole_usd.plugins.video.interface import DiffusionVideoPrior

    folder = save_tiny_model(tmp_path / "m")
    pairs = [(c.frames, c.fps) for c in context_clips(frames(5), 30.0, length=4)]  # estimator-style pairs
    params = dict(model=str(folder), device="cpu", icadapt_steps=2, icadapt_lr=1e-3, cache_dir=str(tmp_path / "c"))
    first = DiffusionVideoPrior(**params)
    first.adapt(pairs)
    deltas = list((tmp_path / "c").glob("icadapt-*.safetensors"))
    assert len(deltas) == 1
    monkeypatch.setattr(icadapt_module, "icadapt", lambda *a, **k: pytest.fail("cache missed"))
    second = DiffusionVideoPrior(**params)
    second.adapt(pairs)
    a, b = named_parameters(first.model), named_parameters(second.model)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not torch.equal(a["image_encoder.visual_projection.weight"],
                           named_parameters(tiny_video_model(seed=0))["image_encoder.visual_projection.weight"])
