"""The runtime service the app and CLI use."""

import json
import threading

import numpy as np
import pytest

from gan_core.checkpoint import all_finite, save_checkpoint
from gan_core.config import get_profile
from gan_core.errors import BadCheckpointError, BadInputError, Gan3dError, ProfileMismatchError
from gan_core.models import Discriminator, Generator
from gan_core.runtime import find_model, list_models, load_model


@pytest.fixture
def ckpt(tmp_path):
    p = get_profile("tiny16")
    return save_checkpoint(tmp_path / "m.pt", profile=p,
                           models={"generator": Generator(p), "discriminator": Discriminator(p)})


def test_untrained_model_generates_in_range():
    m = load_model(profile="tiny16")
    z = m.sample_z(3, seed=0)
    out = m.generate(z)
    assert out.shape == (3, 16, 16, 16) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    assert np.array_equal(m.sample_z(3, seed=0), z)
    assert m.generate(z[0]).shape == (1, 16, 16, 16)


def test_generate_is_cached_and_consistent():
    m = load_model(profile="tiny16", precision="fp32")
    z = m.sample_z(2, seed=1)
    a = m.generate(z)
    b = m.generate(z)  # from the cache
    c = m.generate(z, use_cache=False)
    assert np.array_equal(a, b) and np.allclose(a, c, atol=1e-6)
    assert len(m._cache) == 2
    m.clear_cache()
    assert len(m._cache) == 0


@pytest.mark.parametrize("precision,tol", [("fp32", 1e-5), ("bf16", 3e-2)])
def test_generate_gives_the_generators_eval_output(ckpt, precision, tol):
    """generate() runs a folded, pre-cast copy on the CPU: the same shapes as the checkpoint's generator."""
    import torch

    m = load_model(ckpt, device="cpu", precision=precision)
    z = m.sample_z(3, seed=4)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        want = m.generator(torch.from_numpy(z)).float().numpy()
    np.testing.assert_allclose(m.generate(z, use_cache=False), want, atol=tol)


def test_generate_batches_larger_than_batch_size():
    m = load_model(profile="tiny16", precision="fp32")
    m.batch_size = 4
    z = m.sample_z(10, seed=2)
    assert np.allclose(m.generate(z, use_cache=False), np.concatenate([m.generate(z[i:i + 1], use_cache=False) for i in range(10)]), atol=1e-5)


def test_generate_is_thread_safe():
    m = load_model(profile="tiny16")
    z = m.sample_z(8, seed=3)
    results, errors = {}, []

    def work(i):
        try:
            results[i] = m.generate(z[i:i + 1])
        except Exception as e:  # pragma: no cover - the assertion below reports it
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and len(results) == 8


@pytest.mark.parametrize("bad", [np.full(32, np.nan), np.zeros(7), np.array(["a"] * 32)])
def test_bad_z_is_a_clear_error(bad):
    with pytest.raises(BadInputError):
        load_model(profile="tiny16").generate(bad)


def test_load_checkpoint_and_profile_check(ckpt):
    m = load_model(ckpt)
    assert m.profile.name == "tiny16" and m.discriminator is not None and m.encoder is None
    assert m.name == "m"
    with pytest.raises(ProfileMismatchError, match="resolution"):
        load_model(ckpt, profile="fast32")
    with pytest.raises(Gan3dError, match="no image encoder"):
        m.encode_image(np.zeros((16, 16, 3)))
    assert len(m.weights_hash()) == 16


def test_loaded_networks_hold_exactly_the_checkpoints_weights(tmp_path):
    """Networks are built on the meta device and take the checkpoint's tensors: nothing is left on meta, nothing
    differs, and a checkpoint missing a tensor is refused rather than half-loaded."""
    import torch

    from gan_core.checkpoint import load_checkpoint

    p = get_profile("tiny16")
    path = save_checkpoint(tmp_path / "m.pt", profile=p, models={"generator": Generator(p), "discriminator": Discriminator(p)})
    saved = load_checkpoint(path)
    m = load_model(path)
    for net, key in ((m.generator, "generator"), (m.discriminator, "discriminator")):
        got = net.state_dict()
        assert set(got) == set(saved[key])
        assert all(not t.is_meta and torch.equal(t, saved[key][k].to(t.dtype)) for k, t in got.items())
    raw = torch.load(path, weights_only=True)
    raw["generator"] = {k: v for k, v in raw["generator"].items() if not k.endswith("running_var")}
    torch.save(raw, tmp_path / "short.pt")
    with pytest.raises(ProfileMismatchError, match="do not fit"):
        load_model(tmp_path / "short.pt")


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_all_finite_finds_one_bad_value_and_is_not_fooled_by_overflowing_sums(dtype):
    import torch

    t = torch.randn(10_000).to(getattr(torch, dtype))
    assert all_finite([t, torch.arange(3)])  # integer tensors are skipped
    for bad in (float("nan"), float("inf"), -float("inf")):
        u = t.clone()
        u[1234] = bad
        assert not all_finite([t, u])
    big = torch.full((1000,), torch.finfo(t.dtype).max, dtype=t.dtype)  # float32: its sum overflows, no value is Inf
    assert all_finite([big, -big])
    both = torch.tensor([float("inf"), -float("inf")], dtype=t.dtype)  # sums to NaN
    assert not all_finite([both])


def test_missing_and_corrupt_checkpoints(tmp_path):
    with pytest.raises(BadCheckpointError, match="no such checkpoint"):
        load_model(tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(BadCheckpointError, match="bad.pt"):
        load_model(tmp_path / "bad.pt")


def test_registry(tmp_path, ckpt):
    reg = tmp_path / "models.json"
    assert list_models(reg) == []
    reg.write_text('{"default": "a", "models": [{"name": "a", "checkpoint": "m.pt", "classes": ["x"]}]}')
    (models := list_models(reg))
    assert models[0].name == "a" and models[0].default and models[0].checkpoint == tmp_path / "m.pt"
    reg.write_text('{"models": [{"checkpoint": "m.pt"}]}')
    with pytest.raises(BadCheckpointError, match="malformed"):
        list_models(reg)


def test_registry_seeds_become_the_models_showcase_seeds(tmp_path, ckpt, monkeypatch):
    reg = ckpt.parent / "models.json"  # beside the checkpoint, which the registry names
    monkeypatch.setattr("gan_core.runtime.REGISTRY", reg)
    monkeypatch.setattr("gan_core.runtime.list_models", lambda registry=reg: list_models(registry))
    entry = '{"default": "a", "models": [{"name": "a", "checkpoint": "%s", "seeds": %s}]}'
    reg.write_text(entry % (ckpt.name, "[7, 3]"))
    assert load_model().default_seeds == (7, 3)
    assert load_model(ckpt).default_seeds == ()  # a plain checkpoint has none
    reg.write_text(entry % (ckpt.name, '[7, "x"]'))
    with pytest.raises(BadCheckpointError, match="seeds"):
        load_model("a")


def test_project_through_runtime():
    m = load_model(profile="tiny16")
    target = np.zeros((16, 16, 16), np.uint8)
    target[4:12, 4:12, 2:6] = 1
    z, iou = m.project(target, steps=5, restarts=2)
    assert z.shape == (32,) and 0.0 <= iou <= 1.0


def test_bundled_bank_for_finds_the_bank_of_a_bundled_model_only(ckpt, monkeypatch):
    from gan_core.runtime import bundled_bank_for

    reg = ckpt.parent / "models.json"
    (ckpt.parent / "b.h5").write_bytes(b"stand-in")
    reg.write_text('{"default": "a", "models": [{"name": "a", "checkpoint": "%s", "bank": "b.h5"}]}' % ckpt.name)
    monkeypatch.setattr("gan_core.runtime.list_models", lambda registry=reg: list_models(registry))
    assert bundled_bank_for(load_model(ckpt)) == ckpt.parent / "b.h5"
    assert bundled_bank_for(load_model(profile="tiny16")) is None  # not from a checkpoint


@pytest.mark.parametrize(("native", "bf16_ms", "expected"), [
    (True, 0.9, "bf16"),  # native and measured faster (the AMD EPYC of session 2: 2.5-3x)
    (True, 1.0, None),  # native but not 20% faster than fp32 (1.2): not worth the precision, nor a noisy pick
    (True, 1.3, None),  # native and slower (an Intel Xeon without AMX: 1.5-1.7x)
    (False, 1.0, None),  # emulated (AVX2 only): a training step 40x slower, never measured
])
def test_auto_precision_on_cpu_is_bf16_only_where_it_measures_faster(monkeypatch, tmp_path, native, bf16_ms,
                                                                     expected):
    import torch

    from gan_core import device

    monkeypatch.setenv("GAN3D_CACHE_DIR", str(tmp_path))
    timed = []

    def conv_pair_ms(bf16):
        timed.append(bf16)
        return bf16_ms if bf16 else 1.2

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(device, "_conv_pair_ms", conv_pair_ms)
    monkeypatch.setattr(device, "_CPU_BF16_FASTER", None)
    want = torch.bfloat16 if expected else None
    assert device.autocast_dtype(torch.device("cpu"), "auto") == want
    assert device.autocast_dtype(torch.device("cpu"), "auto") == want
    assert len(timed) == (12 if native else 0)  # measured once per process: warm-up pair + 5 alternating pairs
    monkeypatch.setattr(device, "_CPU_BF16_FASTER", None)  # the next process on this machine reads the verdict
    assert device.autocast_dtype(torch.device("cpu"), "auto") == want and len(timed) == (12 if native else 0)
    assert (tmp_path / "bf16-verdicts.json").exists() == native
    monkeypatch.setattr(device, "_CPU_BF16_FASTER", None)
    monkeypatch.setattr(torch, "__version__", "another build")  # another torch (or CPU): measured again
    assert device.autocast_dtype(torch.device("cpu"), "auto") == want and len(timed) == (24 if native else 0)
    assert device.autocast_dtype(torch.device("cpu"), "bf16") == torch.bfloat16  # asked for: always given
    assert device.autocast_dtype(torch.device("cpu"), "fp32") is None
    assert load_model(profile="tiny16", device="cpu").amp_dtype == want


def test_the_bf16_measurement_runs_here(monkeypatch, tmp_path):
    from gan_core import device

    monkeypatch.setenv("GAN3D_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(device, "_CPU_BF16_FASTER", None)

    assert device._conv_pair_ms(False) > 0 and device._conv_pair_ms(True) > 0
    assert isinstance(device.cpu_bf16_is_faster(), bool)


def test_a_model_gets_the_encoder_its_registry_entry_names_else_the_default_encoder(tmp_path, ckpt, monkeypatch):
    from gan_core.runtime import bundled_encoder_name, load_encoder_model

    reg = ckpt.parent / "models.json"
    monkeypatch.setattr("gan_core.runtime.list_models", lambda registry=reg: list_models(registry))
    reg.write_text(json.dumps({"default": "all", "models": [
        {"name": "all", "checkpoint": ckpt.name},
        {"name": "chair", "checkpoint": ckpt.name, "encoder_model": "chair_vae"},
        {"name": "all_vae", "checkpoint": ckpt.name, "encoder": True},
        {"name": "chair_vae", "checkpoint": ckpt.name, "encoder": True},
        {"name": "broken", "checkpoint": ckpt.name, "encoder_model": "gone"}]}))
    assert bundled_encoder_name("chair") == "chair_vae"
    assert bundled_encoder_name("all") == bundled_encoder_name() == bundled_encoder_name("a.pt") == "all_vae"
    assert bundled_encoder_name("broken") is None  # names an encoder that is not installed: say none, not crash
    assert load_encoder_model("chair_vae", device="cpu").name == "chair_vae"
    assert load_encoder_model("gone", device="cpu") is None
    reg.write_text(json.dumps({"models": [{"name": "all", "checkpoint": ckpt.name}]}))
    assert bundled_encoder_name("all") is None and load_encoder_model(device="cpu") is None
    # per-category models with encoders of their own, listed first: the default encoder is still the all-class one
    reg.write_text(json.dumps({"default": "all", "models": [
        {"name": "all", "checkpoint": ckpt.name, "classes": ["chair", "sofa", "table"]},
        {"name": "table", "checkpoint": ckpt.name, "classes": ["table"], "encoder": True},
        {"name": "sofa", "checkpoint": ckpt.name, "classes": ["sofa"], "encoder": True},
        {"name": "all_vae", "checkpoint": ckpt.name, "classes": ["chair", "sofa", "table"], "encoder": True}]}))
    assert bundled_encoder_name() == bundled_encoder_name("all") == "all_vae"
    assert bundled_encoder_name("table") == "all_vae"  # has its own encoder: the app uses the model itself


@pytest.mark.parametrize("threads, expected", [(1, "CPU (1 thread)"), (2, "CPU (2 threads)")])
def test_the_status_bars_device_name_counts_threads_in_words(monkeypatch, threads, expected):
    import torch

    from gan_core.device import describe

    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    assert describe(torch.device("cpu")) == expected
