"""Chapter 1: a bias-free denoiser and Algorithm 1, the chapter's scorecard rows.

Everything else the chapter shows is computed by the science modules directly (models,
analysis, sampling); only what it records as checks lives here.
"""
from __future__ import annotations

import torch

from .. import analysis
from ..sampling import SamplerSettings

HOMOGENEITY_TARGET = "<= 1e-4"  # float precision: f(a y) = a f(y) and f(y) = J(y) y
PAPER_SAMPLER_STEPS = "about 100"  # the paper's iterations of Algorithm 1 per sample


def median_steps(steps) -> float:
    """The median number of iterations over the seeds (torch's median, as a float)."""
    return float(torch.as_tensor(steps).float().median())


def scorecard_measurements(model: str, homogeneity_error: float, steps,
                           settings: SamplerSettings) -> list[dict]:
    """check.homogeneity: the largest relative error of the two bias-free identities (a
    maximum that holds by construction: no interval); check.sampler_steps: the median number of
    iterations of Algorithm 1 with `settings` over the seeds (`steps`, one count per seed), with
    its bootstrap interval over the seeds (its target: figures.RULES, the paper's "about 100" to
    its own precision)."""
    return [
        dict(id="check.homogeneity", measure="max relative error of f(a y) = a f(y) and "
             "f(y) = J(y) y", measured=homogeneity_error, target=HOMOGENEITY_TARGET,
             checkpoints=[model]),
        dict(
            id="check.sampler_steps", measure=f"median iterations of Algorithm 1 (sigma "
            f"{settings.sigma0:g} -> {settings.sigma_final:g})", measured=median_steps(steps),
            paper=PAPER_SAMPLER_STEPS, checkpoints=[model],
            interval=analysis.bootstrap_interval(median_steps, steps))
    ]
