"""Other people, other faces, another network, a deterministic sampler (chapter 03): chapter 02's
measures on models trained with chapter 02's recipe on faces split by person, on FER2013, and
with the BF-CNN (paper Figs 9-14 in kind).

    fer = load_pairs(P, "fer2013", device)       # {N: (S1 model, S2 model)} of one face set
    comp = pairs.compare(*(m.model for m in fer[n]), s1_faces, s2_faces, seeds, shape)
    rows = scorecard_measurements(P, gaps, stats, deterministic)

A face set is named by its role here ("identity", "fer2013", "bfcnn"); the profile declares
what each trains (config.FaceSet in `Profile.other_faces`). The comparison of two models is
chapter 02's (`diffgen_utils.pairs`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import analysis, config, data, pairs, plotting, sampling, zoo
from ..config import FaceSet, Profile
from ..families import FACES, OTHER_FACES, SUBSETS

ROLES = OTHER_FACES.roles  # role -> (data set, network) of its FaceSet
# A seed whose S1 and S2 samples agree less than this counts as diverging (issue 16's cut). The
# 2025 Inria report (FOLLOWUPS.md) saw more diverging seeds on identity-disjoint halves, with no
# score; the share below this cut, in both splits, puts a number on it.
LOW_AGREEMENT = 0.8
# Algorithm 1 with beta = 1: no noise is injected after y0, so the path is deterministic.
DETERMINISTIC = sampling.SamplerSettings(beta=1.0)


def face_set(p: Profile, role: str) -> FaceSet:
    """The profile's FaceSet of a role (a clear error when the profile declares none)."""
    if role not in ROLES:
        raise ValueError(f"unknown face-set role {role!r}; one of {', '.join(ROLES)}")
    dataset, arch = ROLES[role]
    for fs in p.other_faces:
        if (fs.dataset, fs.arch) == (dataset, arch):
            return fs
    raise ValueError(f"profile {p.name} declares no {role} face set ({dataset}, {arch}) in "
                     f"other_faces; add a config.FaceSet for it")


def largest_n(p: Profile, role: str) -> int:
    return max(face_set(p, role).pairs)


def model_name(p: Profile, role: str, n: int, subset: str = "S1") -> str:
    dataset, arch = ROLES[role]
    return OTHER_FACES.name(p, n, subset, dataset=dataset, arch=arch)


def faces_of(p: Profile, role: str) -> data.FacePool:
    return data.face_pool(ROLES[role][0], p.face_size, substitute_ok=p.train_missing)


def load_pairs(p: Profile, role: str, device: str = "cpu") -> dict:
    """{N: (S1 model, S2 model)} for every pair N of the role's face set (zoo models)."""
    return {
        n: tuple(zoo.load(model_name(p, role, n, s), p, device=device) for s in SUBSETS)
        for n in face_set(p, role).pairs
    }


def load_s1(p: Profile, role: str, device: str = "cpu") -> dict:
    """{N: S1 model} for every N of the role's face set (pairs and S1-only)."""
    fs = face_set(p, role)
    return {
        n: zoo.load(model_name(p, role, n), p, device=device)
        for n in sorted({*fs.pairs, *fs.s1_only})
    }


def load_shared_pairs(p: Profile, ns, device: str = "cpu") -> dict:
    """{N: (S1, S2)} of chapter 02's models at these N: the split that shares people."""
    return {n: tuple(zoo.load(FACES.name(p, n, s), p, device=device) for s in SUBSETS) for n in ns}


@dataclass
class FaceSetResults:
    """One face set measured as chapter 02 measures its models: each S1 model's train - test
    gap (measured here, per image) and each pair's samples from the same seeds."""

    role: str
    s1: dict  # N -> S1 model (zoo)
    pairs: dict  # N -> (S1, S2) models, at the N with a pair
    gaps: dict  # N -> pairs.PsnrGap of the S1 model
    comps: dict  # N -> pairs.Comparison of the pair

    def table(self, caption: str) -> plotting.Table:
        """Per N: the S1 gap and, where there is a pair, the medians of the three cosines."""
        return plotting.table(
            ["N", "gap S1 (dB)", "S1 vs S2", "sample vs nearest train", "distinct seeds"], [[
                n, g.gap,
                *(self.comps[n].stats.medians().values() if n in self.comps else [None] * 3)
            ] for n, g in self.gaps.items()], [",d", ".2f", ".3f", ".3f", ".3f"], caption=caption)


def measure(p: Profile, role: str, pool: data.FacePool, seeds, device: str = "cpu",
            settings: sampling.SamplerSettings | None = None) -> FaceSetResults:
    """Load a face set's models and measure them on `pool` at the profile's sizes."""
    s1, pair_models = load_s1(p, role, device), load_pairs(p, role, device)
    test, shape = pool.test(p.n_test), (1, p.face_size, p.face_size)
    gaps = {
        n:
        pairs.psnr_gap(m.model, pool.split(n, "S1", p.n_test), test, config.EVAL_SIGMAS,
                       n_eval=p.n_eval)
        for n, m in s1.items()
    }
    comps = {
        n:
        pairs.compare(*(m.model for m in models), *[pool.split(n, s, p.n_test)
                                                    for s in SUBSETS], seeds, shape, settings)
        for n, models in pair_models.items()
    }
    return FaceSetResults(role, s1, pair_models, gaps, comps)


# ---------------------------------------------------------------- the identity split
def split_people(pool: data.FacePool, n: int, n_test: int) -> dict:
    """Per group (test, S1, S2 at N): faces, identities, aligned share, and the share of its
    faces whose person also appears in S1 (0 for a split by person)."""
    people, aligned = data.people_and_framing(pool)
    groups = {g: pool.indices(g, n, n_test) for g in ("test", "S1", "S2")}
    in_s1 = {people[i] for i in groups["S1"]}
    return {
        g:
        dict(
            faces=len(idx), people=len({people[i]
                                        for i in idx}),
            aligned=float(np.mean([aligned[i] for i in idx])),
            shared_with_s1=None if g == "S1" else float(np.mean([people[i] in in_s1
                                                                 for i in idx])))
        for g, idx in groups.items()
    }


def low_agreement_share(pair: torch.Tensor) -> float:
    """Share of seeds whose S1 and S2 samples agree less than LOW_AGREEMENT."""
    return float((torch.as_tensor(pair) < LOW_AGREEMENT).double().mean())


def low_agreement_measures(stats: pairs.PairStats) -> dict:
    return dict(measured=low_agreement_share(stats.pair),
                interval=analysis.bootstrap_interval(low_agreement_share, stats.pair))


def extremes(comp: pairs.Comparison, count: int) -> tuple[torch.Tensor, list[str], list[str]]:
    """The `count` seeds whose S1/S2 samples agree most and least, as image rows for
    `plotting.image_grid` (rows: S1 most, S2 most, S1 least, S2 least; one seed per column)."""
    order = comp.stats.pair.argsort(descending=True)
    most, least = order[:count], order.flip(0)[:count]
    s1, s2 = comp.samples1.images.clamp(0, 1), comp.samples2.images.clamp(0, 1)
    images = torch.cat([s1[most], s2[most], s1[least], s2[least]])
    titles = ([f"pair {comp.stats.pair[k]:.2f}"
               for k in most] + [""] * count + [f"pair {comp.stats.pair[k]:.2f}"
                                                for k in least] + [""] * count)
    return images, titles, ["S1, most alike", "S2", "S1, least alike", "S2"]


# ---------------------------------------------------------------- scorecard
def scorecard_measurements(p: Profile, gaps: dict, stats: dict, deterministic: dict,
                           s2_gaps: dict | None = None) -> list[dict]:
    """The chapter's rows. Keys are (role, N); role "shared" is chapter 02's split at that N.

    gaps[(role, n)]: PsnrGap of the S1 model measured here; s2_gaps[(role, n)]: the S2 model's
    stored gap (for the spread); stats[(role, n)]: PairStats with the stochastic sampler;
    deterministic[(role, n)]: PairStats with DETERMINISTIC. A key that was not measured gives
    no row."""
    s2_gaps = s2_gaps or {}
    ident, fer, bf = (largest_n(p, r) for r in ("identity", "fer2013", "bfcnn"))
    gap = lambda key: pairs.gap_measures(gaps[key], s2_gaps.get(key))  # noqa: E731
    pair = lambda table: lambda key: pairs.pair_measures(table[key])  # noqa: E731
    low = lambda key: low_agreement_measures(stats[key])  # noqa: E731
    gap_text = "train - test output PSNR (dB), mean over sigma"
    pair_text = "median over seeds of cos(S1 sample, S2 sample)"
    cut = f"share of seeds with cos(S1 sample, S2 sample) < {LOW_AGREEMENT}"
    specs = [
        ("Fig2.pair_similarity_identity_disjoint_largest_N", ("identity", ident),
         f"{pair_text}, S1 and S2 share no person", pair(stats), ">= 0.85"),
        ("beyond.low_agreement_share_identity_disjoint", ("identity", ident),
         f"{cut}, S1 and S2 share no person", low, None),
        ("beyond.low_agreement_share_shared_people", ("shared", ident),
         f"{cut}, chapter 02's split (S1 and S2 share people)", low, None),
        ("Fig9.gap_largest_N", ("fer2013", fer), f"{gap_text}, FER2013", gap, "<= 0.5"),
        ("Fig9.gap_N10", ("fer2013", 10), f"{gap_text}, FER2013", gap, ">= 5"),
        ("Fig10.pair_similarity_largest_N", ("fer2013", fer), f"{pair_text}, FER2013", pair(stats),
         ">= 0.85"),
        ("Fig11.gap_largest_N", ("bfcnn", bf), f"{gap_text}, BF-CNN", gap, "<= 0.5"),
        ("Fig11.gap_N10", ("bfcnn", 10), f"{gap_text}, BF-CNN", gap, ">= 5"),
        ("Fig12.pair_similarity_largest_N", ("bfcnn", bf), f"{pair_text}, BF-CNN", pair(stats),
         ">= 0.85"),
        ("Fig13.pair_similarity_deterministic_fer2013", ("fer2013", fer),
         f"{pair_text}, FER2013, beta = {DETERMINISTIC.beta:g}", pair(deterministic), None),
        ("Fig13.pair_similarity_deterministic_bfcnn", ("bfcnn", bf),
         f"{pair_text}, BF-CNN, beta = {DETERMINISTIC.beta:g}", pair(deterministic), None),
    ]
    rows = []
    for id_, key, measure, measures, target in specs:
        source = deterministic if "deterministic" in id_ else gaps if ".gap" in id_ else stats
        if key not in source:
            continue
        role, n = key
        names = ([FACES.name(p, n, s) for s in SUBSETS] if role == "shared" else
                 [model_name(p, role, n, s) for s in SUBSETS if ".gap" not in id_ or s == "S1"])
        rows.append({
            "id": id_, "measure": f"{measure}, N={n}", **measures(key), "target": target,
            "checkpoints": names
        })
    return rows
