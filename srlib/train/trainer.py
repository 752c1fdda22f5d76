"""One training loop for every recipe of the course.

A recipe is a ``step_fn(trainer, batch, step) -> dict[str, float]``: it computes its losses and
calls :meth:`Trainer.optimize` once per network it updates. Everything else (devices, AMP,
gradient clipping, EMA, NaN detection, progress bar, loss history, checkpoints, exact resume,
DDP) lives here once. Three shapes of step cover the course:

- **GAN** (SRGAN, ESRGAN; notebook 02): two models ``G`` and ``D``, two optimizers. First the D
  step on ``G(lr).detach()``, then the G step through a frozen D::

      def gan_step(tr, batch, step):
          G, D = tr.models["G"], tr.models["D"]
          fake = G(batch["lr"])
          d_loss = bce(D(batch["hr"]), 1) + bce(D(fake.detach()), 0)
          tr.optimize(d_loss, "D")
          with tr.frozen("D"):
              g_loss = l1(fake, batch["hr"]) + 1e-3 * bce(D(fake), 1)
          tr.optimize(g_loss, "G")
          return {"d": d_loss.item(), "g": g_loss.item()}

- **PDD** (notebook 06): ``ema={"G": 0.999}`` keeps ``trainer.ema["G"]``, an exponential moving
  average of G (BasicSR's ``model_ema``: ``ema = decay * ema + (1 - decay) * param`` after every
  step), used as the teacher; the batch carries a labelled and an unlabelled stream.
- **CSD** (notebook 05): one channel-splitting network; the step runs the full width and its
  leading slice and optimizes the sum of both losses with one :meth:`optimize` call.

``batch_fn(step)`` must be a pure function of the step (``PairedPatches.sample_batch(step, n)``
is one), so a resumed run sees exactly the batches it would have seen: together with the saved
model, optimizer, scheduler, EMA, scaler and RNG states, N steps in one go equal N/2 steps,
a checkpoint, a new process and N/2 more, bit for bit on CPU.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..errors import TrainingDivergedError, WeightsError
from .distributed import distributed_env, init_distributed, shard_batch, to_device

CHECKPOINT_FORMAT = "srlib.train.checkpoint/1"
_CHECKPOINT_KEYS = ("format", "step", "models", "optimizers", "schedulers", "ema", "scaler",
                    "history", "rng")


class Trainer:
    """Runs ``step_fn`` for a number of steps over several models and optimizers.

    Args:
        models: name -> network, e.g. ``{"G": gen, "D": disc}``. Moved to ``device``. A model
            with an optimizer of the same name is trained (and wrapped in DDP under torchrun);
            the others (a frozen teacher, a feature extractor) are only moved.
        optimizers: name -> optimizer over that model's parameters (build it before the Trainer
            as usual; moving a model keeps its parameter objects).
        step_fn: ``step_fn(trainer, batch, step) -> dict[str, float]`` (see the module doc).
        schedulers: name -> LR scheduler, stepped right after its optimizer.
        ema: name -> decay; ``trainer.ema[name]`` is an eval-mode copy updated after each step.
        grad_clip: max global L2 norm of each optimizer's gradients (``None``: no clipping).
        device: ``None`` picks ``cuda`` (this rank's GPU under torchrun) when available, else
            ``cpu``; or a ``torch.device`` / string.
        precision: ``"auto"`` (default), ``"fp32"``, ``"bf16"`` or ``"fp16"``: the forward
            pass's :class:`~srlib.runtime.PrecisionPolicy`. On CPU ``"auto"`` means channels_last
            models and batches plus bf16 autocast where the CPU has native bf16; on CUDA it is
            AMP (bf16 when the GPU supports it, else fp16 with a GradScaler). Master weights,
            optimizer state and the loss given to :meth:`optimize` stay fp32.
        amp: the older switch, kept for callers that use it: ``False`` -> ``"fp32"``,
            ``True`` -> ``"auto"``, ``"bf16"`` / ``"fp16"`` as given; overrides ``precision``.
        checkpoint_path: where :meth:`save` writes (atomically); ``None`` keeps nothing on disk.
        checkpoint_every: also save every this many steps (a checkpoint is always written at
            the end of :meth:`fit` when ``checkpoint_path`` is set).
        log_every: record losses in :attr:`history` and refresh the progress bar every this
            many steps (NaN checks still run on every step).
        progress: show a ``tqdm.auto`` bar with live losses (rank 0 only).
        seed: seeds Python, NumPy and torch (``seed + rank`` under torchrun) at construction.
        find_unused_parameters: passed to DDP for models whose forward skips parameters.
    """

    def __init__(self, models: Mapping[str, nn.Module], optimizers: Mapping[str, torch.optim.Optimizer],
                 step_fn: Callable, *, schedulers: Mapping | None = None,
                 ema: Mapping[str, float] | None = None, grad_clip: float | None = None,
                 device=None, precision: str = "auto", amp: bool | str | None = None,
                 checkpoint_path=None,
                 checkpoint_every: int | None = None, log_every: int = 1, progress: bool = True,
                 seed: int = 0, find_unused_parameters: bool = False):
        schedulers, ema = dict(schedulers or {}), dict(ema or {})
        _check_names(models, optimizers, schedulers, ema)
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be a positive number or None, got {grad_clip!r}")
        if checkpoint_every is not None and int(checkpoint_every) < 1:
            raise ValueError(f"checkpoint_every must be >= 1 or None, got {checkpoint_every!r}")
        if int(log_every) < 1:
            raise ValueError(f"log_every must be >= 1, got {log_every!r}")

        self.device = _pick_device(device)
        self.rank, self.world_size = init_distributed(self.device)
        self.is_main = self.rank == 0
        self.seed = int(seed)
        _seed_all(self.seed + self.rank)

        if amp is not None:
            precision = {True: "auto", False: "fp32"}[amp] if isinstance(amp, bool) else amp
        from ..runtime import PrecisionPolicy
        self.policy = PrecisionPolicy(precision, self.device)
        # Layout before the DDP wrap, so DDP's gradient buckets match the parameters' strides.
        self.raw_models = {name: self.policy.model(m.to(self.device)) for name, m in models.items()}
        self.models: dict[str, nn.Module] = dict(self.raw_models)
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP
            ids = [self.device.index] if self.device.type == "cuda" else None
            for name in optimizers:
                self.models[name] = DDP(self.raw_models[name], device_ids=ids,
                                        find_unused_parameters=find_unused_parameters)
        self.optimizers = dict(optimizers)
        self.schedulers = schedulers
        self.ema_decay = {name: float(d) for name, d in ema.items()}
        # Copied after the DDP wrap, which broadcast rank 0's weights: EMA starts equal everywhere.
        self.ema = {name: copy.deepcopy(self.raw_models[name]).eval().requires_grad_(False)
                    for name in self.ema_decay}

        self.step_fn = step_fn
        self.grad_clip = grad_clip
        self.amp_dtype = self.policy.dtype
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=self.amp_dtype == torch.float16)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        self.checkpoint_every = int(checkpoint_every) if checkpoint_every else None
        self.log_every = int(log_every)
        self.progress = bool(progress)
        self.step = 0  # number of completed steps
        # Wall seconds spent making batches vs in step_fn, over the steps this process ran.
        self.timing = {"data": 0.0, "step": 0.0, "steps": 0}
        self.history: list[dict[str, float]] = []
        self.last_checkpoint: tuple[str, int] | None = None  # (path, step) of the last good save
        self._current_step = 0
        self._optimized = False

    # ----------------------------------------------------------------- inside step_fn
    def optimize(self, loss: torch.Tensor, name: str) -> None:
        """One update of model ``name``: zero_grad, backward, clip, step, scheduler step.

        The loss is checked first: NaN or inf raises :class:`TrainingDivergedError` before any
        weight changes. On CUDA with fp16 the loss is scaled by the GradScaler (and gradients
        unscaled before clipping); under DDP the backward also averages gradients over ranks.
        """
        if name not in self.optimizers:
            raise KeyError(f"no optimizer named {name!r}; the trainer has: {sorted(self.optimizers)}")
        value = float(loss.detach().float())
        if not math.isfinite(value):
            raise self._diverged(f"the loss given to optimize(..., {name!r})", value)
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, enabled=False):
            self.scaler.scale(loss).backward()
        if self.grad_clip is not None:
            self.scaler.unscale_(opt)
            params = [p for group in opt.param_groups for p in group["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        self.scaler.step(opt)
        self._optimized = True
        if name in self.schedulers:
            self.schedulers[name].step()

    @contextlib.contextmanager
    def frozen(self, *names: str):
        """Within the block, the parameters of ``names`` do not require grad (e.g. D in the G step).

        Gradients still flow *through* the frozen network to its input, but none accumulate in
        it. Under DDP its gradient sync is also suspended (``no_sync``), since it gets none.
        """
        saved: list[tuple[torch.Tensor, bool]] = []
        with contextlib.ExitStack() as stack:
            for name in names:
                if name not in self.raw_models:
                    raise KeyError(f"no model named {name!r}; the trainer has: {sorted(self.raw_models)}")
                wrapped = self.models[name]
                if hasattr(wrapped, "no_sync"):
                    stack.enter_context(wrapped.no_sync())
                for p in self.raw_models[name].parameters():
                    saved.append((p, p.requires_grad))
                    p.requires_grad_(False)
            try:
                yield
            finally:
                for p, flag in saved:
                    p.requires_grad_(flag)

    # ----------------------------------------------------------------------- the loop
    def fit(self, batch_fn: Callable[[int], object], steps: int, *, resume: bool = False):
        """Train until ``steps`` steps are done in total (not ``steps`` more); returns :attr:`history`.

        ``batch_fn(step)`` gives the global batch of step ``step`` (0-based); under torchrun each
        rank keeps rows ``rank::world_size`` of it (see :mod:`srlib.train.distributed`).
        ``resume=True`` first loads ``checkpoint_path`` if it exists (else starts fresh).
        """
        if resume:
            if self.checkpoint_path is None:
                raise ValueError("fit(..., resume=True) needs Trainer(checkpoint_path=...)")
            if self.checkpoint_path.exists():
                self.resume(self.checkpoint_path)
        steps = int(steps)
        if self.step >= steps:
            return self.history
        from tqdm.auto import tqdm

        for name in self.optimizers:  # trained networks train (dropout on); others keep their mode
            self.raw_models[name].train()

        bar = tqdm(total=steps, initial=self.step, disable=not (self.progress and self.is_main),
                   desc="train", dynamic_ncols=True, leave=True)
        saved_at = None
        try:
            while self.step < steps:
                step = self._current_step = self.step
                t0 = time.perf_counter()
                batch = to_device(shard_batch(batch_fn(step), self.rank, self.world_size), self.device)
                batch = self.policy.batch(batch)
                t1 = time.perf_counter()
                self._optimized = False
                with self.policy.autocast():
                    out = self.step_fn(self, batch, step)
                losses = self._finite_losses(out)
                if self.scaler.is_enabled() and self._optimized:
                    self.scaler.update()
                self._update_ema()
                self.timing["data"] += t1 - t0
                self.timing["step"] += time.perf_counter() - t1
                self.timing["steps"] += 1
                self.step += 1
                if self.step % self.log_every == 0 or self.step == steps:
                    self.history.append({"step": self.step, **losses})
                    bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()}, refresh=False)
                bar.update(1)
                if self.checkpoint_every and self.step % self.checkpoint_every == 0 \
                        and self.checkpoint_path is not None:
                    self.save()
                    saved_at = self.step
            if self.checkpoint_path is not None and saved_at != self.step:
                self.save()
        finally:
            bar.close()
        return self.history

    def history_frame(self) -> dict[str, list[float]]:
        """The loss history as columns: ``{"step": [...], "g": [...], ...}`` (NaN where absent)."""
        keys = ["step"] + sorted({k for row in self.history for k in row} - {"step"})
        return {k: [row.get(k, float("nan")) for row in self.history] for k in keys}

    # ------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Everything needed to continue exactly: plain tensors, numbers, lists and dicts only."""
        rng = _rng_state(self.device)
        if self.world_size > 1:
            every = [None] * self.world_size
            dist.all_gather_object(every, rng)
            rngs = every
        else:
            rngs = [rng]
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "world_size": self.world_size,
            "models": {n: m.state_dict() for n, m in self.raw_models.items()},
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "ema": {n: m.state_dict() for n, m in self.ema.items()},
            "scaler": self.scaler.state_dict(),
            "history": [dict(row) for row in self.history],
            "rng": rngs,
        }

    def save(self, path=None) -> Path:
        """Write a checkpoint atomically (temp file + ``os.replace``); only rank 0 writes."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("save() needs a path: pass one or set Trainer(checkpoint_path=...)")
        self._check_weights_finite()
        state = self.state_dict()  # every rank takes part (the RNG states are gathered)
        if self.is_main:
            atomic_torch_save(state, path)
        if self.world_size > 1:
            dist.barrier()
        self.last_checkpoint = (str(path), self.step)
        return path

    def resume(self, path=None) -> int:
        """Load a checkpoint written by :meth:`save`; returns the step it continues from."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("resume() needs a path: pass one or set Trainer(checkpoint_path=...)")
        self.load_state_dict(load_checkpoint(path), source=str(path))
        self.last_checkpoint = (str(path), self.step)
        return self.step

    def load_state_dict(self, state: Mapping, source: str = "checkpoint") -> None:
        """Restore from :meth:`state_dict`; a mismatch raises :class:`WeightsError` naming it."""
        for group, mine in (("models", self.raw_models), ("optimizers", self.optimizers),
                            ("schedulers", self.schedulers), ("ema", self.ema)):
            if set(state[group]) != set(mine):
                raise WeightsError(
                    f"{source} holds {group} {sorted(state[group])} but this trainer has "
                    f"{sorted(mine)}; resume with the same recipe that wrote it")
        try:
            for name, model in self.raw_models.items():
                model.load_state_dict(state["models"][name])
            for name, model in self.ema.items():
                model.load_state_dict(state["ema"][name])
            for name, opt in self.optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
            for name, sched in self.schedulers.items():
                sched.load_state_dict(state["schedulers"][name])
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise WeightsError(f"{source} does not fit this trainer's models/optimizers: {exc}") from exc
        if self.scaler.is_enabled() and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.history = [dict(row) for row in state["history"]]
        rngs = state["rng"]
        if len(rngs) == self.world_size:
            _set_rng_state(rngs[self.rank], self.device)
        else:
            warnings.warn(f"{source} was written by {len(rngs)} process(es), this run has "
                          f"{self.world_size}: the random streams are re-seeded, so the run "
                          "continues correctly but not bit for bit", stacklevel=2)
            _seed_all(self.seed + self.rank + 7919 * self.step)

    # -------------------------------------------------------------------- internals
    def _finite_losses(self, out) -> dict[str, float]:
        if not isinstance(out, Mapping):
            raise TypeError(f"step_fn must return a dict of loss name -> number, got {type(out).__name__}")
        losses = {}
        for key, value in out.items():
            value = float(value.detach().float()) if isinstance(value, torch.Tensor) else float(value)
            if not math.isfinite(value):
                raise self._diverged(f"loss {key!r}", value)
            losses[str(key)] = value
        return losses

    def _check_weights_finite(self) -> None:
        """Refuse to checkpoint NaN/inf weights (a finite loss can still leave them behind)."""
        for group, models in (("model", self.raw_models), ("EMA model", self.ema)):
            for name, model in models.items():
                for key, t in model.state_dict().items():
                    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                        raise self._diverged(f"{group} {name!r} tensor {key!r} holds NaN/inf values")

    def _diverged(self, what: str, value: float | None = None) -> TrainingDivergedError:
        if self.last_checkpoint is not None:
            path, at = self.last_checkpoint
            kept = (f"The last good checkpoint {path} (step {at}) is kept, nothing was saved after "
                    "the divergence; lower the learning rate or set grad_clip, then resume from it.")
        else:
            kept = ("No checkpoint had been written yet (set checkpoint_path/checkpoint_every to "
                    "keep one); lower the learning rate or set grad_clip and start again.")
        return TrainingDivergedError(
            f"training diverged: {what}{'' if value is None else f' is {value}'} at step "
            f"{self._current_step}. {kept}")

    @torch.no_grad()
    def _update_ema(self) -> None:
        for name, decay in self.ema_decay.items():
            src, dst = self.raw_models[name], self.ema[name]
            for p_ema, p in zip(dst.parameters(), src.parameters()):
                p_ema.mul_(decay).add_(p.detach(), alpha=1.0 - decay)
            for b_ema, b in zip(dst.buffers(), src.buffers()):
                b_ema.copy_(b)


# ------------------------------------------------------------------------------ helpers
def atomic_torch_save(obj, path) -> None:
    """``torch.save`` to a temp file in the same folder, fsync, then ``os.replace``.

    A crash mid-write leaves the previous file intact: readers see the old or the new
    checkpoint, never half of one. Through :func:`srlib.atomic.atomic_open`: the file's mode
    follows the umask, a temp file left by a run killed mid-write (as large as a checkpoint) is
    removed by the next save of the same path, and an unwritable path is named in the error.
    """
    from ..atomic import atomic_open, make_dirs

    path = Path(path)
    make_dirs(path.parent)
    with atomic_open(path, "wb", fsync=True) as f:
        torch.save(obj, f)


def load_checkpoint(path) -> dict:
    """Read a trainer checkpoint with ``weights_only=True``; any problem is a :class:`WeightsError`."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint {path} does not exist; check the path or train from scratch")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, not a torch file, unsafe pickle content, ...
        raise WeightsError(
            f"checkpoint {path} is corrupt or not a srlib checkpoint ({type(exc).__name__}: {exc}); "
            "delete it and resume from an earlier one or train from scratch") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT \
            or any(k not in state for k in _CHECKPOINT_KEYS):
        raise WeightsError(
            f"{path} is a torch file but not a srlib training checkpoint (expected format "
            f"{CHECKPOINT_FORMAT!r} with keys {list(_CHECKPOINT_KEYS)})")
    return state


def _check_names(models, optimizers, schedulers, ema) -> None:
    if not models:
        raise ValueError("Trainer needs at least one model, e.g. models={'G': generator}")
    for name, m in models.items():
        if not isinstance(m, nn.Module):
            raise TypeError(f"models[{name!r}] is a {type(m).__name__}, not a torch.nn.Module")
    for group, names in (("optimizers", optimizers), ("ema", ema)):
        extra = set(names) - set(models)
        if extra:
            raise KeyError(f"{group} names {sorted(extra)} have no model of the same name; "
                           f"models are {sorted(models)}")
    extra = set(schedulers) - set(optimizers)
    if extra:
        raise KeyError(f"schedulers {sorted(extra)} have no optimizer of the same name")
    for name, decay in ema.items():
        if not 0.0 <= float(decay) < 1.0:
            raise ValueError(f"EMA decay for {name!r} must be in [0, 1), got {decay!r} (0.999 is usual)")


def _pick_device(device) -> torch.device:
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", distributed_env()[2] % torch.cuda.device_count())
        return torch.device("cpu")
    from ..runtime import pick_device
    dev = device if isinstance(device, torch.device) else pick_device(str(device))
    if dev.type == "cuda" and dev.index is None:  # under torchrun: this rank's GPU
        dev = torch.device("cuda", distributed_env()[2] % torch.cuda.device_count())
    return dev


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state(device: torch.device) -> dict:
    """Python, NumPy and torch RNG states as tensors / ints / lists (loadable with weights_only)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": int(version), "state": list(internal), "gauss": py_gauss},
    }


def _set_rng_state(state: Mapping, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
