"""diffgen_utils: the thin library behind the diffgen book, a reproduction of Kadkhodaie et al.,
"Generalization in diffusion models arises from geometry-adaptive harmonic representations"
(ICLR 2024). Import the submodules you need: the science here (config, data, models, train,
sampling, analysis, jacobian, zoo, ...), one module per chapter in `chapters`, the book's tooling
(runner, scorecard, browser check) in `book`. This package imports nothing heavy on its own.
"""

__version__ = "0.1.0"
