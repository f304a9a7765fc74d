"""From memorization to generalization (chapter 02): what the chapter computes and draws beyond
the comparison of two models (`diffgen_utils.pairs`): the perfect memorizer, its rows, the
closest S1-S2 pairs, two sampling paths from one start, the gap against N, and the models at a
second resolution (Fig 15, Table 1, the pair at 40x40).

Nothing here reads files but `stored_gaps`: models and images are passed in, so every function
runs on tiny toy inputs in the tests.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import analysis, data, plotting, sampling, zoo
from ..config import Profile, unet_blocks
from ..models import build_model, count_parameters, receptive_field
from ..families import FACES, SUBSETS, not_shipped
from ..pairs import (PAIR_ROWS, Comparison, PsnrGap, compare, eval_images, gap_measures,
                     nearest_measures, pair_measures, seed_measures)


def memorizer(train: torch.Tensor, y: torch.Tensor, sigma: float) -> torch.Tensor:
    """The optimal denoiser of the training set itself (N equally likely images): E[x | y] =
    sum_i w_i x_i with w = softmax(-||y - x_i||^2 / (2 sigma^2)). A perfectly memorizing network
    computes this; sampling with it can only return training images."""
    d2 = torch.cdist(y.flatten(1).double(), train.flatten(1).double())**2
    w = torch.softmax(-d2 / (2 * sigma**2), dim=1)
    return (w @ train.flatten(1).double()).reshape(y.shape).to(y.dtype)


class BlindMemorizer(torch.nn.Module):
    """`memorizer` as a blind noise-predicting network (y -> y - E[x | y]), usable by the sampler:
    sigma is estimated from y as the distance to the nearest training image / sqrt(d). The
    control of Figure 2: the denoiser a network that memorized perfectly would compute."""

    def __init__(self, train: torch.Tensor):
        super().__init__()
        self.register_buffer("faces", train.detach().clone())

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        d2 = torch.cdist(y.flatten(1).double(), self.faces.flatten(1).double())**2
        sigma = (d2.min(dim=1).values / y[0].numel()).sqrt().clamp_min(1e-6)
        w = torch.softmax(-d2 / (2 * sigma[:, None]**2), dim=1)
        return y - (w @ self.faces.flatten(1).double()).reshape(y.shape).to(y.dtype)


def memorizer_psnr(train: torch.Tensor, sigmas, n_eval: int | None = None,
                   seed: int = 1) -> np.ndarray:
    """Output PSNR of `memorizer` on its own training images at each sigma (same images and
    noise seed as the training curve of `psnr_gap`): the ceiling a network trained on `train`
    could reach by memorizing. A perfect recovery counts as 100 dB."""
    x = eval_images(train, n_eval) if n_eval is not None else train
    return analysis.psnr_curve(lambda y, sigma: memorizer(train, y, sigma), x, sigmas, seed=seed,
                               max_db=100)


def scorecard_measurements(profile: Profile, gaps: dict, stats: dict, blocks: int | None = None,
                           s2_gaps: dict | None = None) -> list[dict]:
    """The chapter's scorecard rows for the N that were measured.

    gaps[n] = PsnrGap of the S1 model, stats[n] = PairStats of the S1/S2 pair; an N that was
    not measured gives no row. `blocks` marks the rows of the depth control: ids end in
    `_{blocks}blocks`. s2_gaps[n]: the S2 model's gap (its stored evaluation, the protocol of
    `psnr_gap`), for the gap rows' S1/S2 spread. Every row has a bootstrap interval (`gaps`
    measured here, with per-image values) and, where both models have the measure, a spread.
    """
    largest_n, s2_gaps = profile.faces.largest_n, s2_gaps or {}
    gap = lambda n: gap_measures(gaps[n], s2_gaps.get(n))  # noqa: E731
    specs = [
        ("F1.gap_largest_N", largest_n, "train - test output PSNR (dB), mean over sigma", gap,
         "<= 0.5"),
        ("F1.gap_N10", 10, "train - test output PSNR (dB), mean over sigma", gap, ">= 5"),
        ("F2.pair_similarity_largest_N", largest_n, "median over seeds of cos(S1 sample, S2 "
         "sample)", lambda n: pair_measures(stats[n]), ">= 0.9"),
        ("F2.pair_similarity_N10", 10, "median over seeds of cos(S1 sample, S2 sample)",
         lambda n: pair_measures(stats[n]), "<= 0.6"),
        ("F2.nearest_train_similarity_N10", 10, "median cos(sample, nearest training image)",
         lambda n: nearest_measures(stats[n]), ">= 0.95"),
        ("F3.seed_similarity_largest_N", largest_n, "median cos between samples of distinct "
         "seeds of one model", lambda n: seed_measures(stats[n]), "<= 0.7"),
    ]
    suffix, net = ("", "") if blocks is None else (f"_{blocks}blocks", f", {blocks}-block UNet")
    return [{
        "id": id_ + suffix, "measure": f"{measure}, N={n}{net}", **measures(n), "target": target,
        "checkpoints": [FACES.name(profile, n, s, blocks=blocks) for s in SUBSETS]
    } for id_, n, measure, measures, target in specs if n in gaps and n in stats]


def closest_cross_pairs(s1: torch.Tensor, s2: torch.Tensor, block: int = 4096):
    """For each S1 image: (index of the most similar S2 image, that mean-removed cosine)."""
    return analysis.nearest_neighbors(s1, s2, block=block)


# ---------------------------------------------------------------- diverging trajectories
def trajectory_similarity(traj_a: dict, traj_b: dict) -> tuple[np.ndarray, np.ndarray]:
    """(steps, mean-removed cosine of the one-step denoised images f(y_t)) over the steps both
    recorded trajectories share."""
    steps_a, steps_b = list(traj_a["step"]), list(traj_b["step"])
    common = sorted(set(steps_a) & set(steps_b))
    a = traj_a["denoised"][[steps_a.index(t) for t in common]]
    b = traj_b["denoised"][[steps_b.index(t) for t in common]]
    return np.array(common), analysis.cosine_similarity(a, b).numpy()


def snapshots(paths: dict, count: int = 8, keys=("a", "b", "partner")):
    """(steps, frames): `count` steps spread over the steps every run in `keys` recorded, and
    the denoised snapshots f(y_t) at those steps, run by run, as one (len(keys) * count) batch."""
    keys = [k for k in keys if k in paths]
    common = sorted(set.intersection(*(set(paths[k]["step"]) for k in keys)))
    picks = [
        common[i] for i in np.unique(np.linspace(0,
                                                 len(common) - 1, count).round().astype(int))
    ]
    frames = torch.cat(
        [paths[k]["denoised"][[list(paths[k]["step"]).index(t) for t in picks]] for k in keys])
    return picks, frames


def split_step(steps: np.ndarray, cos: np.ndarray, threshold: float = 0.9):
    """First step at which the similarity falls below `threshold` (None if it never does)."""
    k = analysis.first_below(cos, threshold)
    return None if k is None else int(steps[k])


def two_paths(model: torch.nn.Module, seed: int, noise_seeds, shape,
              settings: sampling.SamplerSettings | None = None, partner=None, **overrides) -> dict:
    """Two runs of `model` from one start y0 (`seed`) with different injected noise
    (`noise_seeds`, two of them), recorded at every step; optionally `partner` (the other
    subset's model) from the same start *and* the same noise as the first run. `overrides`
    change sampler settings (e.g. max_steps)."""
    settings = settings or sampling.SamplerSettings()
    if overrides:
        settings = sampling.SamplerSettings(**{**settings.__dict__, **overrides})
    a, b = [int(s) for s in noise_seeds]
    runs = sampling.sample(model, [seed, seed], shape=shape, settings=settings, record_every=1,
                           noise_seeds=[a, b])
    out = {
        "a": runs.trajectories[0], "b": runs.trajectories[1], "sigmas": runs.sigmas[:2], "images":
        runs.images
    }
    out["steps"], out["cos_ab"] = trajectory_similarity(out["a"], out["b"])
    if partner is not None:
        other = sampling.sample(partner, [seed], shape=shape, settings=settings, record_every=1,
                                noise_seeds=[a])
        out["partner"], out["partner_sigmas"] = other.trajectories[0], other.sigmas[0]
        out["partner_steps"], out["cos_partner"] = trajectory_similarity(out["a"], out["partner"])
    return out


GAP_FLOOR_DB = 0.01  # Fig 15 is drawn on a log scale: smaller gaps are drawn at this floor


def stored_gaps(profile: Profile, names: dict, device: str = "cpu") -> dict:
    """{N: train - test gap (dB)} of the models `names[N]`, from the evaluation stored when
    their training ended."""
    return {
        n: PsnrGap.from_history(zoo.load(name, profile, device=device).history[-1]).gap
        for n, name in names.items()
    }


def plot_gap_vs_n(curves: dict, ax, controls=()) -> None:
    """Fig 15: the train - test gap (mean over the noise levels) against N, one line per
    curves[label] = {N: gap}, on log-log axes (gaps below GAP_FLOOR_DB drawn at the floor);
    the labels in `controls` are drawn dashed, and a curve without points is left out."""
    for label, gaps in curves.items():
        if not gaps:
            continue
        ns = sorted(gaps)
        style = "o--" if label in controls else "o-"
        ax.loglog(ns, [max(gaps[n], GAP_FLOOR_DB) for n in ns], style, ms=4, label=label,
                  alpha=0.6 if label in controls else 1.0)
    ax.set_xlabel("N (training images)"), ax.set_ylabel("train − test PSNR (dB)")
    ax.grid(alpha=0.3, which="both"), ax.legend(fontsize=8)


def gap_history(net) -> tuple[np.ndarray, np.ndarray]:
    """(training images seen, train - test gap in dB) at each evaluation of a model's training."""
    history = net.history
    return (np.array([e["step"] * net.config.batch
                      for e in history]), np.array([PsnrGap.from_history(e).gap for e in history]))


def plot_gap_histories(ax, nets: dict, title: str = "", legend: bool = True) -> None:
    """The train - test gap of each nets[label] against the training images it had seen (a
    model that is None is left out): is the gap that Fig 15 reads still moving?"""
    for label, net in nets.items():
        if net is not None:
            ax.plot(*gap_history(net), "o-", ms=3, label=label)
    ax.set_xlabel("training images seen"), ax.set_ylabel("train − test PSNR (dB)")
    ax.set_ylim(bottom=0), ax.set_title(title, fontsize=9), ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=7)


def gap_history_figure(profile: Profile, nets: dict, size_nets: dict, longer: dict | None = None):
    """One panel per N with S1 models at both sizes: the train - test gap against training of
    the face size's S1 and S2 models and the second size's S1 models. nets, size_nets:
    {(N, subset): model} at the face size and at `Profile.second_size`; longer: {(N, steps):
    model} of the second size's longer runs (`longer_size_models`)."""
    ns = [n for n in profile.second_size.s1_ns if (n, "S1") in nets and (n, "S1") in size_nets]
    if not ns:
        return plotting.notice("no N has models at both sizes yet")
    main = size_label(profile.face_size, profile.blocks)
    second = size_label(profile.second_size.size, unet_blocks(profile.second_size.size))
    ncols = min(2, len(ns))
    nrows = -(-len(ns) // ncols)
    fig, axes = plotting.subplots(nrows, ncols, height=2.4 * nrows, squeeze=False)
    for i, (ax, n) in enumerate(zip(axes.flat, ns)):
        panel = {f"{main}, S1": nets[n, "S1"], f"{main}, S2": nets.get((n, "S2"))}
        panel[f"{second}, S1"] = size_nets[n, "S1"]
        runs = {steps: net for (m, steps), net in sorted((longer or {}).items()) if m == n}
        for steps, net in runs.items():
            panel[f"{second}, S1, {steps:,} steps"] = net
        plot_gap_histories(ax, panel, title=f"N = {n:,}", legend=i == 0 or bool(runs))
    for ax in axes.flat[len(ns):]:
        ax.axis("off")
    return fig


def plot_paths(paths: dict, axes, marks=()) -> None:
    """Fig 8: cosine of the denoised snapshots along t (left) and the effective noise level
    (right) of a `two_paths` result; `marks` are steps drawn as dotted lines."""
    ax0, ax1 = axes
    ax0.plot(paths["steps"], paths["cos_ab"], label="S1 noise A vs S1 noise B")
    if "partner" in paths:
        ax0.plot(paths["partner_steps"], paths["cos_partner"], label="S1 noise A vs S2 noise A")
    ax0.set_xlabel("step t"), ax0.set_ylabel(r"cosine of $f(y_t)$")
    ax1.semilogy(paths["sigmas"][0], label="S1 noise A")
    ax1.semilogy(paths["sigmas"][1], label="S1 noise B")
    ax1.set_xlabel("step t"), ax1.set_ylabel(r"effective $\hat\sigma_t$")
    for ax in axes:
        for t in marks:
            ax.axvline(t, color="k", ls=":", lw=1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)


def explorer(rows: dict, description: str = "N"):
    """A widget that works without a kernel: rows[label] = list of PNG bytes, one per seed
    0, 1, 2, ... (seed k is item k). A Dropdown picks the label, a slider the seed; all images
    are in the saved widget state and the links run in the browser (jslink)."""
    import ipywidgets as widgets

    labels = list(rows)
    n_seeds = {len(v) for v in rows.values()}
    if not labels or len(n_seeds) != 1:
        raise ValueError("give at least one label, with the same number of images for each")
    n_seeds = n_seeds.pop()
    pick = widgets.Dropdown(options=labels, index=0, description=description)
    seed = widgets.IntSlider(value=0, min=0, max=n_seeds - 1, description="seed",
                             continuous_update=True)
    inner = [
        widgets.Stack([widgets.Image(value=png, format="png")
                       for png in rows[label]], selected_index=0) for label in labels
    ]
    outer = widgets.Stack(inner, selected_index=0)
    links = [widgets.jslink((pick, "index"), (outer, "selected_index"))]
    links += [widgets.jslink((seed, "value"), (stack, "selected_index")) for stack in inner]
    box = widgets.VBox([widgets.HBox([pick, seed]), outer])
    box.links = links  # keep the links alive with the box
    return box


# ---------------------------------------------------------------------------- a second resolution
# Table 1 of the paper: face resolution -> (UNet blocks, receptive field, parameters at width 64)
PAPER_TABLE1 = {
    20: (1, 18, 366_080), 40: (2, 44, 1_825_024), 80: (3, 92, 7_659_264), 160: (4, 188, 30_993_152)
}
GAP_RATIO_NS = (100, 1000)  # Fig 15's rows: the second size's gap over the face size's at these N
GAP_RATIO_TARGET = ">= 1.5"  # larger images need more N (set by the issue, before training)
SIZE_PAIR_SEEDS = 64  # seeds of the S1/S2 pair at the second size (a 40x40 sample costs ~4x)


def size_label(size: int, blocks: int) -> str:
    return f"{size}×{size}, {blocks} block{'s' * (blocks > 1)}"


def size_models(profile: Profile, device: str = "cpu") -> dict:
    """{(N, subset): zoo model} of every model the profile declares at its second size with the
    profile's steps (the longer runs: `longer_size_models`)."""
    ss = profile.second_size
    keys = [(n, s) for n in ss.pairs for s in SUBSETS] + [(n, "S1")
                                                          for n in ss.s1_only if n not in ss.pairs]
    return {(n, s): zoo.load(FACES.name(profile, n, s, size=ss.size), profile, device=device)
            for n, s in sorted(keys)}


def longer_size_models(profile: Profile, device: str = "cpu") -> dict:
    """{(N, steps): zoo model} of the S1 runs at the second size trained for longer
    (`SizeSet.longer`)."""
    ss = profile.second_size
    return {(n, steps): zoo.load(FACES.name(profile, n, size=ss.size, steps=steps), profile,
                                 device=device)
            for n, steps in sorted(ss.longer)}


def final_gap(net) -> float:
    """A model's train - test gap (dB, mean over its noise levels) at its last evaluation."""
    return PsnrGap.from_history(net.history[-1]).gap


def longer_curves(label: str, longer: dict) -> dict:
    """Fig 15's points of the longer runs ({(N, steps): model}): {"<label>, <steps> steps":
    {N: gap}}, one curve per number of steps."""
    curves = {}
    for (n, steps), net in sorted(longer.items()):
        curves.setdefault(f"{label}, {steps:,} steps", {})[n] = final_gap(net)
    return curves


def longest_runs(models: dict, longer: dict) -> dict:
    """{N: model} of the longest-trained S1 run at each N: the run of `longer` ({(N, steps):
    model}) with the most steps where there is one, else the S1 model of `models`."""
    runs = s1_models(models)
    for n, steps in sorted(longer):  # ascending steps: the longest run is written last
        runs[n] = longer[n, steps]
    return runs


def longest_gaps(models: dict, longer: dict) -> dict:
    """{N: gap (dB)} of `longest_runs`: the second size's gaps the rows of Fig 15 rest on."""
    return {n: final_gap(net) for n, net in longest_runs(models, longer).items()}


LATE_FRACTION = 1 / 3  # "late in training": the last third of the images seen


def late_gap_range(net, fraction: float = LATE_FRACTION) -> tuple[float, float]:
    """The smallest and largest train - test gap (dB) a model measured over the last `fraction`
    of its training: how far one evaluation, the gap Fig 15 reads, could have fallen."""
    seen, gap = gap_history(net)
    late = gap[seen >= seen[-1] * (1 - fraction)]
    return float(late.min()), float(late.max())


def s1_models(models: dict) -> dict:
    """{N: model} of the S1 models among {(N, subset): zoo model}."""
    return {n: net for (n, s), net in models.items() if s == "S1"}


def s1_gaps(models: dict) -> dict:
    """{N: train - test gap (dB)} of the S1 models among {(N, subset): zoo model}, from the
    evaluation each stored when its training ended."""
    return {n: final_gap(net) for n, net in s1_models(models).items()}


def size_pair(profile: Profile, seeds, device: str = "cpu") -> Comparison | None:
    """The S1/S2 pair at the second size and its largest N, sampled from `seeds` and compared as
    in Fig 2; None where the profile declares no pair at that size."""
    ss = profile.second_size
    if not ss.pairs:
        return None
    n = max(ss.pairs)
    pool = data.face_pool("celeba", ss.size, substitute_ok=profile.train_missing)
    models = [
        zoo.load(FACES.name(profile, n, s, size=ss.size), profile, device=device).model
        for s in SUBSETS
    ]
    faces = [pool.split(n, s, profile.n_test) for s in SUBSETS]
    return compare(*models, *faces, seeds, (1, ss.size, ss.size))


def plot_size_pair(pair: Comparison | None, profile: Profile, count: int = 8):
    """Fig 7's grid for the pair at the second size (`size_pair`): `count` seeds, or, where the
    profile has no such pair, a panel that says so."""
    ss = profile.second_size
    title = f"{size_label(ss.size, unet_blocks(ss.size))}, N = {max(ss.pairs, default=0):,}"
    if pair is None:
        return plotting.notice(not_shipped(profile, ss.size, profile.faces.largest_n,
                                           "S1/S2 pair"))
    count = min(count, len(pair.stats.pair))
    grid, titles = pair.columns(count)
    return plotting.image_grid(grid, titles=titles, ncols=count, row_labels=PAIR_ROWS,
                               suptitle=title)


def size_pair_rows(pairs: dict) -> list[list]:
    """One table row per {label: Comparison or None}: seeds and the three medians of Fig 2."""
    return [[label, len(c.stats.pair), *c.stats.medians().values()] for label, c in pairs.items()
            if c is not None]


def table1_rows(configs: dict) -> list[list]:
    """Table 1 for `configs` ({label: TrainConfig} of UNets): image, blocks, width, parameters,
    receptive field, with the paper's blocks, receptive field and parameters (width 64)."""
    rows = []
    for label, c in configs.items():
        paper = PAPER_TABLE1.get(c.size, (None, None, None))
        rf = receptive_field(c)
        rows.append([
            label, f"{c.size}×{c.size}", c.blocks, paper[0], c.width,
            count_parameters(build_model(c)), paper[2], f"{rf}×{rf}",
            None if paper[1] is None else f"{paper[1]}×{paper[1]}"
        ])
    return rows


TABLE1_HEADER = [
    "model", "image", "blocks", "paper", "width", "parameters", "paper (width 64)",
    "receptive field", "paper"
]
TABLE1_FORMATS = ["<", ">", "d", "d", "d", ",d", ",d", ">", ">"]


def gap_ratios(gaps: dict, s2_gaps: dict, size_gaps: dict) -> dict:
    """Fig 15's test at each N of GAP_RATIO_NS with models at both sizes: {N: (ratio, spread)},
    the second size's S1 gap over the face size's mean S1/S2 gap, and how much the ratio
    changes between the face size's S1 and S2 gap (dB in, a ratio out)."""
    out = {}
    for n in GAP_RATIO_NS:
        if n in size_gaps and n in gaps and n in s2_gaps:
            mean = (gaps[n] + s2_gaps[n]) / 2
            out[n] = (size_gaps[n] / mean, abs(size_gaps[n] / gaps[n] - size_gaps[n] / s2_gaps[n]))
    return out


def size_measurements(profile: Profile, gaps: dict, s2_gaps: dict, size_gaps: dict,
                      size_stats=None) -> list[dict]:
    """Fig 15's rows and the pair at the second size (`Profile.second_size`).

    gaps[n], s2_gaps[n]: the face size's S1 and S2 gaps (dB); size_gaps[n]: the second size's
    S1 gap, from its longest run at N (`longest_gaps`); size_stats: PairStats of its S1/S2 pair
    at the largest N (None: not sampled). The ratio's spread is the ratio's change between the
    S1 and the S2 gap at the face size. A row whose models the profile lacks is declared
    missing."""
    ss, size = profile.second_size, profile.second_size.size
    base, net = f"{profile.face_size}×{profile.face_size}", size_label(size, unet_blocks(size))

    def longest(n):  # the run the rows at N rest on: its checkpoint and how long it trained
        steps = ss.longest_steps(n)
        trained = "" if steps is None else f" ({net} trained {steps:,} steps)"
        return FACES.name(profile, n, size=size, steps=steps), trained

    rows, ratios = [], gap_ratios(gaps, s2_gaps, size_gaps)
    for n in GAP_RATIO_NS:
        name, trained = longest(n)
        row = dict(
            id=f"Fig15.gap_ratio_N{n}", target=GAP_RATIO_TARGET,
            measure=f"train - test gap at {net} over that at {base} (mean of S1 and "
            f"S2), mean over sigma, N={n}{trained}", checkpoints=[name])
        if n in ratios:
            row.update(measured=ratios[n][0], spread=ratios[n][1])
        else:
            row.update(measured=None, missing=not_shipped(profile, ss.size, n))
        rows.append(row)
    largest = max(ss.pairs, default=profile.faces.largest_n)
    name, trained = longest(largest)
    row = dict(id=f"Fig15.gap_{size}px_largest_N", checkpoints=[name],
               measure=f"train - test gap at {net}, mean over sigma, N={largest}{trained}")
    row.update(
        dict(measured=size_gaps[largest]) if largest in
        size_gaps else dict(measured=None, missing=not_shipped(profile, ss.size, largest)))
    rows.append(row)
    row = dict(id=f"Fig2.pair_similarity_{size}px_largest_N",
               checkpoints=[FACES.name(profile, largest, s, size=size) for s in SUBSETS],
               measure=f"median over seeds of cos(S1 sample, S2 sample), {net}, N={largest}")
    row.update(
        pair_measures(size_stats) if size_stats is not None else dict(
            measured=None, missing=not_shipped(profile, ss.size, largest, "S1/S2 pair")))
    rows.append(row)
    return rows
