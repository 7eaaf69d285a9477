"""gan_core: the 3D-GAN and 3D-VAE-GAN of Wu et al. (NIPS 2016) without any GUI. Never imports Qt."""

__version__ = "0.1.0"
