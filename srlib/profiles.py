"""Run profiles: one switch that sets the size of every experiment in the course.

- ``smoke``: CI on every change. Every notebook runs end to end in <= 90 s on 2 CPU cores;
  numbers are meaningless, every output is produced.
- ``standard``: a laptop CPU (``make course``). Each notebook <= 10 min; each paper's effect
  should be visible (or the notebook says, with numbers, that it is not).
- ``paper``: a GPU, hours; the papers' own model sizes, schedules and data sets.

Shared settings live on :class:`Profile`; a notebook or recipe that needs its own knob uses
:meth:`Profile.pick` so that all three values sit side by side where they are used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ProfileError

PROFILE_NAMES = ("smoke", "standard", "paper")


@dataclass(frozen=True)
class Profile:
    """Budgets shared by every notebook.

    Attributes:
        name: ``smoke``, ``standard`` or ``paper``.
        scale: super-resolution factor used throughout the course.
        lr_patch: side of a low-resolution training patch (HR patch = ``lr_patch * scale``).
        batch_size: training batch size.
        num_feat, num_block: width and depth of the small generators used at this profile.
        eval_max_side: held-out HR images are centre-cropped to at most this side for evaluation
            (``None``: whole images). Recorded in every table's provenance.
        n_text: number of rendered text images per split.
        dry_run: the paper profile's dry run (:mod:`srlib.dry_run`): :meth:`pick` returns the
            smoke value, so a notebook's own knobs (toy steps, image counts, tile sizes) stay
            tiny, while recipes, which look their profile up by name, keep the paper's
            architectures and losses (their step counts are cut by :func:`srlib.dry_run.shrink`).
    """

    name: str
    scale: int = 4
    lr_patch: int = 24
    batch_size: int = 16
    num_feat: int = 32
    num_block: int = 4
    eval_max_side: int | None = 256
    n_text: int = 24
    extra: dict = field(default_factory=dict)
    dry_run: bool = False

    def pick(self, *, smoke, standard, paper):
        """Return the value for this profile: ``p.pick(smoke=50, standard=800, paper=400_000)``."""
        return {"smoke": smoke, "standard": standard, "paper": paper}["smoke" if self.dry_run else self.name]

    @property
    def hr_patch(self) -> int:
        return self.lr_patch * self.scale


_PROFILES = {
    "smoke": Profile("smoke", lr_patch=16, batch_size=4, num_feat=16, num_block=2,
                     eval_max_side=128, n_text=8),
    "standard": Profile("standard", lr_patch=24, batch_size=16, num_feat=32, num_block=4,
                        eval_max_side=256, n_text=24),
    "paper": Profile("paper", lr_patch=32, batch_size=16, num_feat=64, num_block=16,
                     eval_max_side=None, n_text=200),
}


def get_profile(name: str | Profile) -> Profile:
    """Look up a profile by name; a wrong name raises :class:`ProfileError` listing valid ones.

    A :class:`Profile` is returned as it is, except a dry-run one, which gives the real profile
    of its name: recipes build the paper's configs even when a notebook's knobs are shrunk.
    """
    if isinstance(name, Profile):
        return _PROFILES.get(name.name, name) if name.dry_run else name
    key = str(name).strip().lower()
    if key not in _PROFILES:
        raise ProfileError(
            f"unknown profile {name!r}; valid profiles are: {', '.join(PROFILE_NAMES)}"
        )
    return _PROFILES[key]
