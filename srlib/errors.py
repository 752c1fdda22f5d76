"""Errors that srlib raises on purpose.

Every error a user can cause (a bad file, a wrong name, a missing weight file) is one of
these, with a message that says what is wrong and what to do. They subclass the built-in
exception a caller would naturally catch (``ValueError``, ``FileNotFoundError``), so code
that does not know srlib still handles them.
"""


class SrlibError(Exception):
    """Base class of every error srlib raises deliberately."""


class ImageReadError(SrlibError, ValueError):
    """An image file is missing, empty, truncated, not an image, or too large to decode."""


class ProfileError(SrlibError, ValueError):
    """An unknown profile name was asked for."""


class DatasetError(SrlibError, ValueError):
    """An unknown data set or split, or an image that cannot be used as asked (too small, ...)."""


class DegradationError(SrlibError, ValueError):
    """An image, kernel or parameter that a degradation cannot use (wrong shape, dtype, range)."""


class WeightsError(SrlibError, ValueError):
    """A weight or checkpoint file is missing, corrupt, or does not fit the architecture."""


class BackboneUnavailableError(WeightsError, FileNotFoundError):
    """Pretrained weights (VGG19, AlexNet for LPIPS, ...) are not in the local cache."""


class DownloadError(SrlibError, OSError):
    """A download failed or its checksum did not match."""


class TrainingDivergedError(SrlibError, FloatingPointError):
    """A loss became NaN or infinite during training."""
