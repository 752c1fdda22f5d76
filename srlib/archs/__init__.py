"""Network architectures of the course, one file per family.

Generators (state-dict keys and parameter counts identical to BasicSR, so official
ESRGAN / Real-ESRGAN / EDSR checkpoints load): ``RRDBNet``, ``MSRResNet``, ``EDSR`` (with a
channel-splitting ``width`` for CSD). Discriminators: ``VGGStyleDiscriminator``,
``UNetDiscriminatorSN``. Small GANs for notebook 01: ``MLPGenerator``, ``MLPDiscriminator``,
``DCGANGenerator``, ``DCGANDiscriminator``.

``ARCHS`` maps the command-line names to the generator classes.
"""

from .arch_util import ResidualBlockNoBN, Upsample, count_params, default_init_weights, pixel_unshuffle
from .category_disc import CategoryDiscriminator, MultiDiscriminator
from .discriminators import UNetDiscriminatorSN, VGGStyleDiscriminator
from .edsr import EDSR
from .gan_nets import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from .rrdbnet import RRDB, RRDBNet, ResidualDenseBlock
from .srresnet import MSRResNet

ARCHS = {"rrdbnet": RRDBNet, "msrresnet": MSRResNet, "edsr": EDSR}

__all__ = [
    "ARCHS", "count_params", "default_init_weights", "pixel_unshuffle", "ResidualBlockNoBN", "Upsample",
    "RRDBNet", "RRDB", "ResidualDenseBlock", "MSRResNet", "EDSR",
    "VGGStyleDiscriminator", "UNetDiscriminatorSN", "CategoryDiscriminator", "MultiDiscriminator",
    "MLPGenerator", "MLPDiscriminator", "DCGANGenerator", "DCGANDiscriminator",
]
