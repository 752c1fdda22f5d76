"""Adversarial losses for the discriminator (D) and the generator (G).

All functions take raw discriminator outputs (logits / critic values, any shape: ``(N, 1)``
or a patch map ``(N, 1, H, W)``) and average over every element. ``d_loss`` is the sum of
its real and fake terms, as one D step minimises it.

Kinds:

- ``"vanilla"``: Goodfellow et al., "Generative Adversarial Nets" (NeurIPS 2014). D maximises
  ``V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))]`` (Eq. 1) with ``D = sigmoid(logit)``, i.e.
  minimises the binary cross-entropy ``-log D(x) - log(1 - D(G(z)))``. G uses the
  NON-SATURATING form the paper recommends in Sec. 3, ``-log D(G(z))``, which has strong
  gradients when D confidently rejects the fakes. (BasicSR's ``GANLoss('vanilla')``.)
- ``"minimax"``: same D; G minimises Eq. 1 literally, ``log(1 - D(G(z)))``. Its gradient
  vanishes when D wins (``D(G(z)) -> 0``): the saturation notebook 01 shows.
- ``"lsgan"``: Mao et al., "Least Squares Generative Adversarial Networks" (ICCV 2017), Eq. 2
  with a=0, b=1, c=1: ``L_D = 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]``,
  ``L_G = 1/2 E[(D(G(z)) - 1)^2]``. (BasicSR's MSE form drops the 1/2.)
- ``"hinge"``: Lim & Ye, "Geometric GAN" (2017); Miyato et al., "Spectral Normalization for
  GANs" (ICLR 2018): ``L_D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``, ``L_G = -E[D(G(z))]``.
- ``"wgan"``: Arjovsky et al., "Wasserstein GAN" (ICML 2017): the critic minimises
  ``E[C(G(z))] - E[C(x)]``, G minimises ``-E[C(G(z))]``. Only meaningful when C is kept
  (approximately) 1-Lipschitz: weight clipping, gradient penalty or spectral normalisation.
- ``"ragan"``: relativistic average GAN (Jolicoeur-Martineau 2018), the ESRGAN discriminator;
  see :func:`relativistic_d_loss` / :func:`relativistic_g_loss`. Needs both logits. The D loss
  treats the other side's mean as a constant in each term (current BasicSR, the default);
  :func:`relativistic_d_loss_coupled` keeps the 2018 form with gradients through both means.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GAN_KINDS = ("vanilla", "minimax", "lsgan", "hinge", "wgan", "ragan")


def _check(kind: str, *logits: torch.Tensor | None) -> None:
    if kind not in GAN_KINDS:
        raise ValueError(f"unknown GAN loss kind {kind!r}; use one of {', '.join(GAN_KINDS)}")
    for t in logits:
        if t is not None and not isinstance(t, torch.Tensor):
            raise ValueError(f"GAN losses expect discriminator outputs as torch.Tensors, "
                             f"got {type(t).__name__}")


def bce_real(logits: torch.Tensor) -> torch.Tensor:
    """``-log sigmoid(logits)``, averaged: BCE-with-logits against label 1."""
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def bce_fake(logits: torch.Tensor) -> torch.Tensor:
    """``-log(1 - sigmoid(logits))``, averaged: BCE-with-logits against label 0."""
    return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))


def relativistic_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, *,
                        detach_other: bool = True) -> torch.Tensor:
    """Relativistic average discriminator loss (ESRGAN, Wang et al. 2018, Eq. 1-2).

    ``D_Ra(x_r, x_f) = sigmoid(C(x_r) - E[C(x_f)])`` asks "is the real image more realistic than
    the fakes on average?". ESRGAN's Eq. 2:
    ``L_D = -E_xr[log D_Ra(x_r, x_f)] - E_xf[log(1 - D_Ra(x_f, x_r))]``.
    Returned here as the MEAN of the two terms (``L_D / 2``), as ESRGAN's official code and
    BasicSR compute it, so that their published loss weights (e.g. 5e-3) carry over.
    Pass ``fake_logits`` computed from detached generator outputs in the D step.

    Gradients. By default (``detach_other=True``) this follows current BasicSR
    (``ESRGANModel.optimize_parameters`` since 2020): the other side's mean is a constant in
    each term, ``E[C(x_f)]`` in the real term and ``E[C(x_r)]`` in the fake term, so each term
    sends gradients through its own logits only (BasicSR computes the real term from a detached
    fake prediction and the fake term from a detached real one, backpropagating each term
    separately: its fix #278 of 2020-08-31 for an in-place BatchNorm error in distributed
    training). The value is the
    same either way; D's gradients are not: with ``detach_other=False``
    (:func:`relativistic_d_loss_coupled`, the 2018 ESRGAN code and earlier BasicSR) both
    terms also push through the other side's mean, which changes D's gradient by about as
    much as the gradient itself. The ESRGAN recipe uses the default.
    """
    _check("ragan", real_logits, fake_logits)
    fake_mean, real_mean = fake_logits.mean(), real_logits.mean()
    if detach_other:
        fake_mean, real_mean = fake_mean.detach(), real_mean.detach()
    real_rel = real_logits - fake_mean
    fake_rel = fake_logits - real_mean
    return 0.5 * (bce_real(real_rel) + bce_fake(fake_rel))


def relativistic_d_loss_coupled(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The relativistic average D loss with gradients through both means (the original form).

    Same value as :func:`relativistic_d_loss`; the gradient of each term also flows through the
    other side's mean, as in the 2018 official ESRGAN code (``SRRaGAN_model``) and BasicSR
    before 2020. Kept to compare with the current default, ``relativistic_d_loss(...,
    detach_other=False)``.
    """
    return relativistic_d_loss(real_logits, fake_logits, detach_other=False)


def relativistic_g_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Relativistic average generator loss (ESRGAN Eq. 2, the symmetric form of L_D).

    ``L_G = -E_xr[log(1 - D_Ra(x_r, x_f))] - E_xf[log D_Ra(x_f, x_r)]``: G benefits from the
    gradients of both real and fake data. Returned as the mean of the two terms (``L_G / 2``),
    as in ESRGAN's official code and BasicSR. ``real_logits`` are treated as constants.
    """
    _check("ragan", real_logits, fake_logits)
    real_logits = real_logits.detach()
    real_rel = real_logits - fake_logits.mean()
    fake_rel = fake_logits - real_logits.mean()
    return 0.5 * (bce_fake(real_rel) + bce_real(fake_rel))


def d_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator (critic) loss to minimise for ``kind`` in :data:`GAN_KINDS`."""
    _check(kind, real_logits, fake_logits)
    if kind in ("vanilla", "minimax"):
        return bce_real(real_logits) + bce_fake(fake_logits)
    if kind == "lsgan":
        return 0.5 * (real_logits - 1).pow(2).mean() + 0.5 * fake_logits.pow(2).mean()
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    if kind == "wgan":
        return fake_logits.mean() - real_logits.mean()
    return relativistic_d_loss(real_logits, fake_logits)


def g_loss(kind: str, fake_logits: torch.Tensor,
           real_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Generator loss to minimise for ``kind``; ``real_logits`` only for ``"ragan"``."""
    _check(kind, fake_logits, real_logits)
    if kind == "vanilla":
        return bce_real(fake_logits)
    if kind == "minimax":
        return -bce_fake(fake_logits)  # = E[log(1 - D(G(z)))]
    if kind == "lsgan":
        return 0.5 * (fake_logits - 1).pow(2).mean()
    if kind in ("hinge", "wgan"):
        return -fake_logits.mean()
    if real_logits is None:
        raise ValueError("g_loss('ragan', ...) needs real_logits: the relativistic generator loss "
                         "compares fake and real discriminator outputs")
    return relativistic_g_loss(real_logits, fake_logits)
