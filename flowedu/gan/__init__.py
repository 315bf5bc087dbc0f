"""Chapter: book/gan.md — GANs: the Dirac-GAN, gradient penalties, parameter averaging, small image GANs."""

from flowedu.gan.dirac import *  # noqa: F403
from flowedu.gan.dirac import __all__ as _dirac_all
from flowedu.gan.ema import *  # noqa: F403
from flowedu.gan.ema import __all__ as _ema_all
from flowedu.gan.evaluation import *  # noqa: F403
from flowedu.gan.evaluation import __all__ as _evaluation_all
from flowedu.gan.models import *  # noqa: F403
from flowedu.gan.models import __all__ as _models_all
from flowedu.gan.penalties import *  # noqa: F403
from flowedu.gan.penalties import __all__ as _penalties_all
from flowedu.gan.training import *  # noqa: F403
from flowedu.gan.training import __all__ as _training_all
from flowedu.gan.vae_gan import *  # noqa: F403
from flowedu.gan.vae_gan import __all__ as _vae_gan_all

__all__ = [*_dirac_all, *_ema_all, *_evaluation_all, *_models_all, *_penalties_all, *_training_all, *_vae_gan_all]
