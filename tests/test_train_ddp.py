"""Data-parallel training: two gloo processes under torchrun equal one process on the global batch.

The recipe is a GAN step (D step on two forwards, then a G step through a frozen D), the case
where DDP is easiest to get wrong. Losses are means over the batch, so averaging the two
ranks' gradients gives the gradient of the mean over the whole batch.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

RECIPE = textwrap.dedent('''
    import sys
    import torch
    import torch.nn.functional as F
    from torch import nn
    from srlib.train import Trainer, cleanup_distributed

    def build():
        torch.manual_seed(0)
        G = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.PixelShuffle(2))
        D = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1))
        opts = {"G": torch.optim.Adam(G.parameters(), 1e-2), "D": torch.optim.Adam(D.parameters(), 1e-2)}
        return {"G": G, "D": D}, opts

    def batch_fn(step):
        g = torch.Generator().manual_seed(step)
        return {"lr": torch.rand(4, 3, 4, 4, generator=g), "hr": torch.rand(4, 3, 8, 8, generator=g)}

    def gan_step(tr, batch, step):
        G, D = tr.models["G"], tr.models["D"]
        fake = G(batch["lr"])
        real_logit, fake_logit = D(batch["hr"]), D(fake.detach())
        d_loss = (F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
                  + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit)))
        tr.optimize(d_loss, "D")
        with tr.frozen("D"):
            logit = D(fake)
            g_loss = F.l1_loss(fake, batch["hr"]) + 0.1 * F.binary_cross_entropy_with_logits(
                logit, torch.ones_like(logit))
        tr.optimize(g_loss, "G")
        return {"d": d_loss.item(), "g": g_loss.item()}

    def run(steps, checkpoint=None):
        models, opts = build()
        tr = Trainer(models, opts, gan_step, ema={"G": 0.9}, progress=False,
                     checkpoint_path=checkpoint, device="cpu")
        tr.fit(batch_fn, steps)
        return tr

    if __name__ == "__main__":
        out = sys.argv[1]
        tr = run(3, checkpoint=out + "/ck.pt")
        state = {n: m.state_dict() for n, m in tr.raw_models.items()}
        state["G_ema"] = tr.ema["G"].state_dict()
        state["world"] = torch.tensor([tr.world_size, tr.rank])
        torch.save(state, f"{out}/rank{tr.rank}.pt")
        cleanup_distributed()
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_ranks_equal_one_process(tmp_path):
    script = tmp_path / "ddp_recipe.py"
    script.write_text(RECIPE)
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}", str(script), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]

    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["world"].tolist() == [2, 0] and ranks[1]["world"].tolist() == [2, 1]
    ckpt = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert ckpt["step"] == 3 and ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2

    spec = importlib.util.spec_from_file_location("ddp_recipe", script)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    single = recipe.run(3)
    expected = {n: m.state_dict() for n, m in single.raw_models.items()}
    expected["G_ema"] = single.ema["G"].state_dict()
    untrained, _ = recipe.build()

    for name in ("G", "D", "G_ema"):
        for key, want in expected[name].items():
            a, b = ranks[0][name][key], ranks[1][name][key]
            assert torch.equal(a, b), f"replicas differ in {name}.{key}"
            torch.testing.assert_close(a, want, rtol=1e-5, atol=1e-6, msg=f"{name}.{key}")
    start = untrained["D"].state_dict()
    assert any(not torch.equal(ranks[0]["D"][k], start[k]) for k in start), "D never trained"
