"""diffgen_utils: the thin library behind the diffgen book, a reproduction of Kadkhodaie et al.,
"Generalization in diffusion models arises from geometry-adaptive harmonic representations"
(ICLR 2024). Import the submodules you need (config, data, models, train, sampling, analysis, zoo,
run); this package imports nothing heavy on its own.
"""

__version__ = "0.1.0"
