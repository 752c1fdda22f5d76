"""Shipped course checkpoints: the manifest, the committed files, loading, building, auto mode."""

from __future__ import annotations

import json

import pytest
import torch

from srlib import checkpoints as C
from srlib.errors import WeightsError
from srlib.recipes import course_models as M

SHIPPED = C.REPO_ROOT / "data" / "checkpoints"
ENTRY_KEYS = {"name", "file", "history", "notebooks", "arch", "arch_kwargs", "config", "steps",
              "wall_seconds", "threads", "precision", "srlib_version", "git_commit", "sha256",
              "bytes", "params", "held_out"}
SMOKE = {"srresnet_l1": M.srresnet_config, "srgan": M.srgan_config, "rrdb_psnr": M.rrdb_config,
         "esrgan": M.esrgan_config}


def smoke_override(name, cfg):
    return SMOKE[name]("smoke")


def shipped_entries():
    if not (SHIPPED / C.MANIFEST).is_file():
        return []
    return sorted(C.read_manifest(SHIPPED)["models"].items())


def test_registry_lists_the_notebook_02_models_with_longer_schedules():
    C._load_registry()
    for name in ("srresnet_l1", "srgan", "rrdb_psnr", "esrgan"):
        assert name in C.REGISTRY
        long_cfg = C.course_config(name, "standard")
        own = {"srresnet_l1": lambda: M.SRGANConfig.for_profile("standard").psnr,
               "rrdb_psnr": lambda: M.ESRGANConfig.for_profile("standard").psnr,
               "srgan": lambda: M.SRGANConfig.for_profile("standard"),
               "esrgan": lambda: M.ESRGANConfig.for_profile("standard")}[name]()
        assert long_cfg.steps > own.steps, name
    assert C.course_config("srgan", "standard").psnr == C.course_config("srresnet_l1", "standard")
    assert C.course_config("srresnet_l1", "smoke").profile == "smoke"


@pytest.mark.parametrize("name,entry", shipped_entries() or [pytest.param(None, None, marks=pytest.mark.skip(
    reason="no checkpoints committed yet"))])
def test_committed_checkpoint_matches_manifest_and_loads_strictly(name, entry):
    assert ENTRY_KEYS <= set(entry), sorted(ENTRY_KEYS - set(entry))
    assert entry["name"] == name and (SHIPPED / entry["file"]).is_file()
    assert C.sha256_file(SHIPPED / entry["file"]) == entry["sha256"]
    assert not entry["git_commit"].endswith("-dirty"), "checkpoints must be built from a clean tree"
    shipped = C.load(name)  # strict load_state_dict into the named architecture
    assert sum(p.numel() for p in shipped.model.parameters()) == entry["params"]
    arch, kwargs = C.REGISTRY[name].arch(C.course_config(name, "standard"))
    assert (arch, kwargs) == (entry["arch"], entry["arch_kwargs"])
    assert C.read_history(entry)  # the loss history is shipped beside it


def test_every_registered_model_is_shipped_for_its_current_standard_config():
    """A recipe change that alters a course model's config makes its shipped file stale: the
    standard notebooks would quietly retrain it for minutes. Rebuild it in the same change
    (make checkpoints ONLY=name)."""
    C._load_registry()
    if not shipped_entries():
        pytest.skip("no checkpoints committed yet")
    stale = {name: C.why_not_shipped(name, C.course_config(name, "standard"), directory=SHIPPED)
             for name in sorted(C.REGISTRY)}
    assert not {k: v for k, v in stale.items() if v}, stale


def test_committed_checkpoints_fit_the_size_budget():
    total = sum(p.stat().st_size for p in SHIPPED.glob("*") if p.is_file()) if SHIPPED.is_dir() else 0
    assert total <= 30e6, f"data/checkpoints holds {total / 1e6:.1f} MB, over the 30 MB budget"


@pytest.fixture
def built(tmp_path, monkeypatch):
    monkeypatch.setenv("SRLIB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "ck"
    written = C.build(["srresnet_l1"], directory=out, progress=False, config_override=smoke_override,
                      log=lambda *a: None)
    return out, written


def test_build_only_writes_a_valid_entry_and_skips_when_current(built):
    out, written = built
    assert written == ["srresnet_l1"]
    manifest = json.loads((out / C.MANIFEST).read_text())
    assert manifest["format"] == C.MANIFEST_FORMAT
    entry = manifest["models"]["srresnet_l1"]
    assert ENTRY_KEYS <= set(entry)
    assert entry["config"] == C.config_dict(M.srresnet_config("smoke"))
    assert entry["sha256"] == C.sha256_file(out / "srresnet_l1.pth")
    assert 10 < entry["held_out"]["psnr_y"] < 40
    state = torch.load(out / "srresnet_l1.pth", weights_only=True)
    assert all(v.dtype == torch.float32 for v in state.values())
    assert C.read_history(entry, out)[-1]["step"] == entry["steps"]
    again = C.build(["srresnet_l1"], directory=out, progress=False, config_override=smoke_override,
                    log=lambda *a: None)
    assert again == []


def test_auto_loads_only_the_exact_config_at_standard(built):
    out, _ = built
    smoke_cfg = M.srresnet_config("smoke")
    as_standard = M.PSNRConfig(**{**smoke_cfg.__dict__, "profile": "standard"})
    # pretend the shipped entry was a standard model with this config
    manifest = C.read_manifest(out)
    manifest["models"]["srresnet_l1"]["config"] = C.config_dict(as_standard)
    (out / C.MANIFEST).write_text(json.dumps(manifest))
    logs = []
    got = C.obtain("srresnet_l1", as_standard, directory=out, progress=False, log=logs.append)
    assert got.shipped is not None and got.cached and "shipped course checkpoint" in logs[-1]
    ref = C.load("srresnet_l1", directory=out).model
    for a, b in zip(got.model.state_dict().values(), ref.state_dict().values()):
        assert torch.equal(a, b)
    # a different config -> trained, with the reason printed
    other = M.PSNRConfig(**{**as_standard.__dict__, "lr": as_standard.lr * 2, "steps": 2, "period": 2})
    assert C.why_not_shipped("srresnet_l1", other, directory=out).startswith("the shipped 'srresnet_l1'")
    logs.clear()
    trained = C.obtain("srresnet_l1", other, directory=out, progress=False, log=logs.append)
    assert trained.shipped is None and "training (the shipped 'srresnet_l1'" in logs[0] and "lr" in logs[0]
    # retrain always trains
    logs.clear()
    C.obtain("srresnet_l1", as_standard, mode="retrain", directory=out, progress=False, log=logs.append)
    assert "retrain" in logs[0]
    with pytest.raises(ValueError, match="checkpoints="):
        C.obtain("srresnet_l1", as_standard, mode="sometimes", directory=out)


def test_smoke_never_loads_a_shipped_file(built):
    out, _ = built
    logs = []
    got = C.obtain("srresnet_l1", M.srresnet_config("smoke"), directory=out, progress=False, log=logs.append)
    assert got.shipped is None and "smoke profile always trains" in logs[0]


def test_missing_or_corrupt_files_are_clear_errors(built):
    out, _ = built
    (out / "srresnet_l1.pth").write_bytes((out / "srresnet_l1.pth").read_bytes()[:-10] + b"0123456789")
    with pytest.raises(WeightsError, match=r"sha256.*make checkpoints"):
        C.load("srresnet_l1", directory=out)
    (out / "srresnet_l1.pth").unlink()
    with pytest.raises(WeightsError, match=r"missing.*python -m srlib.checkpoints build --only srresnet_l1"):
        C.load("srresnet_l1", directory=out)
    with pytest.raises(WeightsError, match="no entry for 'esrgan'"):
        C.load("esrgan", directory=out)
    (out / C.MANIFEST).write_text("{not json")
    with pytest.raises(WeightsError, match="not valid JSON"):
        C.read_manifest(out)
    with pytest.raises(KeyError, match="no course checkpoint named 'nope'"):
        C.course_config("nope", "standard")


def test_command_line_lists_the_registered_models():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "srlib.checkpoints", "list"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for name in ("srresnet_l1", "srgan", "rrdb_psnr", "esrgan"):
        assert name in out.stdout


def test_concurrent_manifest_updates_keep_every_entry(tmp_path):
    """Two builds writing into one folder at once (e.g. `make checkpoints ONLY=a` and `ONLY=b` in
    parallel) must not drop each other's manifest entries."""
    import threading

    from srlib.checkpoints import _add_manifest_entry, read_manifest

    names = [f"m{i}" for i in range(12)]
    threads = [threading.Thread(target=_add_manifest_entry, args=(tmp_path, n, {"name": n}))
               for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(read_manifest(tmp_path)["models"]) == sorted(names)


def test_total_steps_counts_every_stage_of_a_staged_config():
    from srlib.checkpoints import total_steps
    from srlib.recipes import ESRGANConfig
    from srlib.recipes.realworld import RealWorldConfig

    g = RealWorldConfig.checkpoint("generalist", "standard")
    assert total_steps(g) == g.esrgan.psnr.steps + g.esrgan.steps  # one run: L1 stage, then GAN stage
    e = ESRGANConfig.for_profile("standard")
    assert total_steps(e) == e.steps  # its L1 start is the rrdb_psnr model, counted there
    assert total_steps({"steps": 3}) is None
