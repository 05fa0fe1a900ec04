"""ganae: learn, explore and compare GANs and autoencoders. The PyTorch core (no UI imports here)."""
from .config import ConfigError, RunConfig

__version__ = "0.1.0"
__all__ = ["RunConfig", "ConfigError", "__version__"]
