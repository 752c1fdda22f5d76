"""srlib: the library behind the GAN super-resolution course.

Modules map to the course's ideas: ``io`` (reading images), ``data`` (embedded data sets),
``degradations`` (how low-resolution images are made), ``metrics`` (PSNR/SSIM/LPIPS/NIQE),
``profiles`` (smoke / standard / paper budgets), ``report`` (figures and tables with
provenance), ``course`` (the notebook runner). Nothing here touches the network on import.
"""

__version__ = "0.1.0"

from .errors import (  # noqa: F401
    BackboneUnavailableError,
    DatasetError,
    DegradationError,
    DownloadError,
    ImageReadError,
    ProfileError,
    SrlibError,
    TrainingDivergedError,
    WeightsError,
)
