"""Model families, each declared once: how its models are named, which ones a profile has, and
the TrainConfig a name stands for.

    FACES.name(P, 13000, "S2")              # "celeba-N13000-S2"
    OTHER_FACES.name(P, 10, dataset="fer2013")  # "fer2013-N10-S1"
    CALPHA.name(P, 4)                       # "calpha4-N20000"
    MANIFOLDS.name(P, "disks")              # "disks-N20000"
    WATCHED.name(P, 100, blocks=2)          # "celeba-N100-S1-2blocks-watched"
    model_names(P, "all"), config_of("celeba-N10-S1", P)

A family reads its sizes from its block of the profile (config.FaceModels, CalphaModels,
ManifoldModels, ...). Adding a family means a class here, its block in config.py and its chapter.
"""
from __future__ import annotations

import re
from dataclasses import replace

from . import config, synthetic
from .config import Profile, TrainConfig

_NUM = r"(\d+(?:\.\d+)?)"
SUBSETS = ("S1", "S2")


def _number(x: float) -> str:
    """Shortest spelling of a number in a name: 4.0 -> "4", 1.5 -> "1.5"."""
    return f"{float(x):g}"


def _parse_number(text: str, name: str) -> float:
    value = float(text)
    if _number(value) != text:
        raise KeyError(f"write {text} as {_number(value)} in model names ({name!r})")
    return value


def _positive_n(text: str, name: str) -> int:
    if int(text) < 1:
        raise KeyError(f"N must be at least 1 in {name!r}")
    return int(text)


class Faces:
    """Face models: `celeba-N{n}-S{1|2}` (chapters 01-04), `celeba_shuffled-N{n}-S1` (the same
    faces under one fixed pixel permutation), `...-{size}px` (Fig 15: another resolution, UNet
    blocks from Table 1), `...-{b}blocks` (chapter 02's depth control) and `...-{steps}steps`
    (trained longer, the same schedule stretched). Omitted parts take the profile's face size,
    Table 1's blocks and the profile's steps."""

    key = "faces"
    pattern = re.compile(r"^(celeba|celeba_shuffled)-N(\d+)-(S1|S2)"
                         r"(?:-(\d+)px)?(?:-(\d+)blocks)?(?:-(\d+)steps)?$")
    spelling = "celeba-N<n>-S1|S2[-<size>px][-<b>blocks][-<steps>steps], celeba_shuffled-N<n>-S1"

    def name(self, p: Profile, n: int, subset: str = "S1", *, dataset: str = "celeba",
             size: int | None = None, blocks: int | None = None, steps: int | None = None) -> str:
        size = size or p.face_size
        name = f"{dataset}-N{n}-{subset}"
        if size != p.face_size:
            name += f"-{size}px"
        default_blocks = p.blocks if size == p.face_size else config.unet_blocks(size)
        if blocks is not None and blocks != default_blocks:
            name += f"-{blocks}blocks"
        if steps is not None and steps != p.steps:
            name += f"-{steps}steps"
        self.config(name, p)  # every name it builds must parse back
        return name

    def names(self, p: Profile) -> list[str]:
        f = p.faces
        names = [self.name(p, n, s) for n in f.n_values for s in SUBSETS]
        names.append(self.name(p, f.largest_n, dataset="celeba_shuffled"))
        names += [self.name(p, n, size=size) for size in f.gap_sizes for n in f.n_values]
        for ss in f.more_sizes:
            names += [self.name(p, n, s, size=ss.size) for n in ss.pairs for s in SUBSETS]
            names += [self.name(p, n, size=ss.size) for n in ss.s1_only if n not in ss.pairs]
            names += [self.name(p, n, size=ss.size, steps=steps) for n, steps in ss.longer]
        names += [self.name(p, n, s, blocks=f.deeper_blocks) for n in f.deeper_ns for s in SUBSETS]
        names += [
            self.name(p, n, blocks=f.deeper_blocks) for n in f.deeper_gap_ns
            if n not in f.deeper_ns
        ]
        return names

    def config(self, name: str, p: Profile) -> TrainConfig | None:
        match = self.pattern.match(name)
        if not match:
            return None
        dataset, n, subset = match.group(1), _positive_n(match.group(2), name), match.group(3)
        size, blocks = p.face_size, p.blocks
        if match.group(4) is not None:
            size = int(match.group(4))
            if size == p.face_size:
                raise KeyError(f"{name!r}: {size}px is the profile's own face size; leave "
                               f"'-{size}px' out of the name")
            if size < 4:
                raise KeyError(f"{name!r}: faces need at least 4x4 pixels")
            blocks = config.unet_blocks(size)
        if match.group(5) is not None:
            if int(match.group(5)) == blocks:
                raise KeyError(f"{name!r}: {blocks} blocks is the default at {size}x{size}; "
                               f"leave '-{blocks}blocks' out of the name")
            blocks = int(match.group(5))
            if not 1 <= blocks <= 4 or size % 2**blocks:
                raise KeyError(f"{name!r}: a UNet needs 1 to 4 blocks and a size divisible by "
                               f"2**blocks, got {blocks} blocks at {size}x{size}")
        steps = p.steps
        if match.group(6) is not None:
            steps = int(match.group(6))
            if steps in (0, p.steps):
                raise KeyError(f"{name!r}: give more steps than the profile's {p.steps}, or "
                               f"leave '-<steps>steps' out of the name")
        return p.train_config(dataset, n, subset=subset, size=size, blocks=blocks, steps=steps)


class OtherFaces:
    """Chapter 02's face models on other faces or with another network (the "other faces"
    chapter): `celeba_ids-N{n}-S{1|2}` (S1 and S2 split by person), `fer2013-N{n}-S{1|2}`, and
    `{data set}-N{n}-S{1|2}-bfcnn` (the BF-CNN instead of the UNet); chapter 02's recipe and
    face size otherwise. A profile lists them in `other_faces` (config.FaceSet)."""

    key = "other_faces"
    # the chapter's name for each face set: role -> (data set, network) of its FaceSet
    roles = {
        "identity": ("celeba_ids", "unet"), "fer2013": ("fer2013", "unet"), "bfcnn":
        ("celeba", "bfcnn")
    }
    pattern = re.compile(r"^(celeba|celeba_ids|fer2013)-N(\d+)-(S1|S2)(-bfcnn)?$")
    spelling = "celeba_ids|fer2013-N<n>-S1|S2[-bfcnn], celeba-N<n>-S1|S2-bfcnn"

    def name(self, p: Profile, n: int, subset: str = "S1", *, dataset: str = "celeba",
             arch: str = "unet") -> str:
        name = f"{dataset}-N{n}-{subset}" + ("" if arch == "unet" else f"-{arch}")
        if self.config(name, p) is None:
            raise KeyError(f"{name!r} is not an other-faces model (a CelebA UNet is "
                           f"chapter 02's: FACES.name)")
        return name

    def names(self, p: Profile) -> list[str]:
        names = []
        for fs in p.other_faces:
            names += [
                self.name(p, n, s, dataset=fs.dataset, arch=fs.arch) for n in fs.pairs
                for s in SUBSETS
            ]
            names += [
                self.name(p, n, dataset=fs.dataset, arch=fs.arch) for n in fs.s1_only
                if n not in fs.pairs
            ]
        return names

    def config(self, name: str, p: Profile) -> TrainConfig | None:
        match = self.pattern.match(name)
        if not match or (match.group(1) == "celeba" and not match.group(4)):
            return None
        arch = "bfcnn" if match.group(4) else "unet"
        return p.train_config(match.group(1), _positive_n(match.group(2), name),
                              subset=match.group(3), arch=arch)


class CAlpha:
    """C^alpha images (chapter 05): `calpha{a}-N{n}`, contour and backgrounds of regularity a
    (Fig 4); `calpha-c{c}-b{b}-N{n}`, contour c and background b (Figs 16-18; c != b). Numbers
    are written shortest (`1`, `1.5`, never `1.0`); N is the profile's synthetic_n."""

    key = "calpha"
    pattern = re.compile(rf"^calpha{_NUM}-N(\d+)$")
    contour_pattern = re.compile(rf"^calpha-c{_NUM}-b{_NUM}-N(\d+)$")
    spelling = "calpha<a>-N<n>, calpha-c<c>-b<b>-N<n>"

    def name(self, p: Profile, alpha: float, background: float | None = None) -> str:
        if background is None or background == alpha:
            return f"calpha{_number(alpha)}-N{p.synthetic_n}"
        return f"calpha-c{_number(alpha)}-b{_number(background)}-N{p.synthetic_n}"

    def names(self, p: Profile) -> list[str]:
        c = p.calpha
        names = [self.name(p, a) for a in c.alphas]
        names += [
            self.name(p, a, c.background) for a in c.contours
            if self.name(p, a, c.background) not in names
        ]
        return names

    def config(self, name: str, p: Profile) -> TrainConfig | None:
        if match := self.pattern.match(name):
            alpha = _parse_number(match.group(1), name)
            options, n = synthetic.data_options("calpha", alpha), match.group(2)
        elif match := self.contour_pattern.match(name):
            c, b = (_parse_number(match.group(i), name) for i in (1, 2))
            if c == b:
                raise KeyError(f"equal regularities: the model is called "
                               f"calpha{_number(c)}-N{match.group(3)}, not {name!r}")
            options, n = synthetic.data_options("calpha", c, b), match.group(3)
        else:
            return None
        o = dict(options)
        recipe = p.calpha.recipe
        if o["alpha"] != o["beta"] and p.calpha.contour_recipe is not None:
            recipe = p.calpha.contour_recipe
        return p.recipe_config("calpha", _positive_n(n, name), recipe, options)


class Manifolds:
    """Low-dimensional manifolds (chapter 06): `disks-N{n}` (Fig 5), `ray-N{n}` (rescalings of
    one face, Fig 19), `cone-N{n}` (unit-frequency sinusoids, Fig 20). The ray's face is the
    first test face of the CelebA pool, or the substitute's first image where the profile
    allows substitutes."""

    key = "manifolds"
    kinds = ("disks", "ray", "cone")
    pattern = re.compile(r"^(disks|ray|cone)-N(\d+)$")
    spelling = "disks-N<n>, ray-N<n>, cone-N<n>"

    def name(self, p: Profile, kind: str) -> str:
        if kind not in self.kinds:
            raise KeyError(f"unknown manifold {kind!r}; one of {', '.join(self.kinds)}")
        return f"{kind}-N{p.synthetic_n}"

    def names(self, p: Profile) -> list[str]:
        return [self.name(p, kind) for kind in self.kinds]

    def config(self, name: str, p: Profile) -> TrainConfig | None:
        match = self.pattern.match(name)
        if not match:
            return None
        kind = match.group(1)
        return p.recipe_config(kind, _positive_n(match.group(2), name),
                               p.manifolds.recipe_for(kind), synthetic.data_options(kind))


class Watched:
    """Face runs that draw samples while they train (chapter 07): `{face model}-watched`, the
    face model's config unchanged, or `{face model}-{steps}steps-watched`, trained for that many
    steps. They sample at train.Watch.for_run(steps) from the profile's `watched.seeds`."""

    key = "watched"
    pattern = re.compile(r"^(celeba-N\d+-S1(?:-\d+blocks)?)(?:-(\d+)steps)?-watched$")
    spelling = "celeba-N<n>-S1[-<b>blocks][-<steps>steps]-watched"

    def name(self, p: Profile, n: int, *, blocks: int | None = None,
             steps: int | None = None) -> str:
        name = FACES.name(p, n, blocks=blocks)
        if steps is not None and steps != p.steps:
            name += f"-{steps}steps"
        self.config(name + "-watched", p)
        return name + "-watched"

    def names(self, p: Profile) -> list[str]:
        w = p.watched
        return ([self.name(p, n, blocks=w.blocks)
                 for n in w.ns] + [self.name(p, n, steps=steps) for n, steps in w.longer])

    def same_as(self, name: str) -> str | None:
        """The face model a watched run trains exactly as (None for a longer run)."""
        match = self.pattern.match(name)
        return match.group(1) if match and match.group(2) is None else None

    def config(self, name: str, p: Profile) -> TrainConfig | None:
        match = self.pattern.match(name)
        if not match:
            return None
        cfg = FACES.config(match.group(1), p)
        if match.group(2) is None:
            return cfg
        if int(match.group(2)) in (0, p.steps):
            raise KeyError(f"{name!r}: give more steps than the profile's {p.steps}, or leave "
                           f"'-<steps>steps' out of the name")
        return replace(cfg, steps=int(match.group(2)))


FACES, OTHER_FACES = Faces(), OtherFaces()
CALPHA, MANIFOLDS, WATCHED = CAlpha(), Manifolds(), Watched()
FAMILIES = {f.key: f for f in (FACES, OTHER_FACES, CALPHA, MANIFOLDS, WATCHED)}
FAMILY_CHOICES = (*FAMILIES, "all")


def not_shipped(p: Profile, size: int, n: int, what: str = "S1 model") -> str:
    """Why a row at another face size waits: the profile ships no such model yet."""
    return (f"the {p.name} profile ships no {size}×{size} {what} at N = {n:,} yet "
            f"({config.unet_blocks(size)}-block UNet, as in Table 1)")


def model_names(p: Profile | str, family: str = "faces") -> list[str]:
    """The models of a profile: one family's, or "all". A profile that `replaces` another
    (book-next) has only the models it trains differently."""
    p = config.get_profile(p) if isinstance(p, str) else p
    if family not in FAMILY_CHOICES:
        raise ValueError(f"unknown family {family!r}; one of {', '.join(FAMILY_CHOICES)}")
    families = FAMILIES.values() if family == "all" else [FAMILIES[family]]
    names = [name for f in families for name in f.names(p)]
    if p.replaces:  # new models, and those the base profile trains otherwise
        base = config.get_profile(p.replaces)
        known = set(model_names(base, family))
        names = [
            name for name in names
            if name not in known or config_of(name, p) != config_of(name, base)
        ]
    return names


def config_of(name: str, p: Profile) -> TrainConfig:
    """The TrainConfig a model name stands for at profile p."""
    for family in FAMILIES.values():
        cfg = family.config(name, p)
        if cfg is not None:
            return cfg
    spellings = ", ".join(f.spelling for f in FAMILIES.values())
    raise KeyError(f"unknown model name {name!r}; known patterns: {spellings}")
