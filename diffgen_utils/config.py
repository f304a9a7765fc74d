"""Profiles and training configs: the one source of defaults for notebooks, models and runs.

A *profile* says how big everything is (smoke: seconds in CI; book: a 2-core CPU; paper: a GPU
at 80x80). A *TrainConfig* says everything that determines one trained model; it is stored in the
model's checkpoint, and a checkpoint is only reused when its config matches exactly.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# The paper halves Adam's learning rate at epochs 100, 200, ..., 900 of 1000.
PAPER_LR_HALVINGS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# Validation noise levels of the paper's code: logspace(0, 2.5, 10) / 255.
EVAL_SIGMAS = tuple(float(10**(2.5 * i / 9) / 255) for i in range(10))
# Noise levels at which chapters 05-06 make their claims (the C^alpha fit range, Figs 5, 16-20):
# synthetic models are also evaluated there while they train, so convergence is checked there.
ANALYSIS_SIGMAS = (0.01, 0.02, 0.04, 0.08, 0.15, 0.2, 0.35)
ANALYSIS_RANGE = (0.01, 0.35)  # convergence is checked at every sigma evaluated in this range


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines one trained denoiser."""

    dataset: str  # "celeba", "fer2013", or a synthetic family ("calpha", "disks", ...)
    size: int  # working resolution (size x size, grayscale)
    n_train: int  # number of training images
    subset: str = "S1"  # "S1" or "S2": disjoint subsets of the same pool
    arch: str = "unet"  # "unet" or "bfcnn"
    blocks: int = 1  # UNet blocks (Table 1: 1 at 20x20, 2 at 40x40, 3 at 80x80)
    width: int = 64  # base channels
    steps: int = 1000
    batch: int = 512
    lr: float = 1e-3
    lr_halvings: tuple = PAPER_LR_HALVINGS  # fractions of the run where the lr halves
    lr_schedule: str = "halvings"  # "halvings" (at lr_halvings) or "cosine" (lr -> 0 at the end)
    sigma_sampling: str = "uniform_squared"  # sigma = U^2 (paper) or "log_uniform"
    sigma_min: float = 1e-3  # floor of the log-uniform draw and of the 1/sigma^2 weight
    loss_weighting: str = "none"  # "none" (paper) or "inverse_variance": error / sigma^2
    seed: int = 0
    eval_every: int = 500
    data_options: tuple = ()  # dataset-specific (key, value) pairs, e.g. (("alpha", 4.0),)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lr_halvings"] = list(self.lr_halvings)
        d["data_options"] = [list(kv) for kv in self.data_options]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}")
        d = dict(d)
        d["lr_halvings"] = tuple(d.get("lr_halvings", PAPER_LR_HALVINGS))
        d["data_options"] = tuple(tuple(kv) for kv in d.get("data_options", ()))
        return cls(**d)

    def digest(self) -> str:
        """Short stable hash of the config (names a checkpoint's identity)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def options(self) -> dict:
        return dict(self.data_options)


def unet_blocks(size: int) -> int:
    """UNet blocks for a face resolution, as in Table 1 (20: 1, 40: 2, 80: 3, 160: 4); at least 1."""
    return max(1, round(math.log2(size / 10)))


@dataclass(frozen=True)
class Recipe:
    """How the models of one synthetic family are trained: TrainConfig fields that differ from
    the profile's face models (None: the profile's value)."""

    arch: str | None = None
    size: int | None = None  # image size (None: the profile's synthetic_size)
    blocks: int | None = None
    width: int | None = None
    steps: int | None = None
    batch: int | None = None
    lr: float | None = None
    lr_halvings: tuple | None = None
    lr_schedule: str | None = None
    sigma_sampling: str | None = None
    sigma_min: float | None = None
    loss_weighting: str | None = None
    eval_every: int | None = None

    def overrides(self) -> dict:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self) if getattr(self, f.name) is not None
        }


# The book's recipe for synthetic sets: a probe on C^alpha (alpha = 4) gave a PSNR slope of
# 0.32 with the paper's unweighted loss and 0.74 with the 1/sigma^2 weighting (optimal 0.80).
BOOK_SYNTHETIC_RECIPE = Recipe(blocks=1, width=32, steps=5_000, batch=32,
                               lr_halvings=(0.5, 0.75, 0.9), sigma_sampling="uniform_squared",
                               loss_weighting="inverse_variance", eval_every=500)

# A steadier recipe for synthetic sets: log-uniform sigma in [0.005, 1] (the 1/sigma^2 weight then
# stays below 4e4), a larger batch, a lower lr decaying as a cosine (half the peak at half-way),
# and a two-block UNet whose 44x44 receptive field covers the image. Compared with the shipped
# one by tools/compare_recipes.py.
MANIFOLD_STEPS = 60_000  # of batch 64: 3.84 M images
CALPHA_STEPS = 12_000  # of batch 64 at 32x32: 0.77 M images, about an hour on one core
STEADY_SYNTHETIC_RECIPE = Recipe(blocks=2, width=32, batch=64, lr=5e-4, lr_schedule="cosine",
                                 sigma_sampling="log_uniform", sigma_min=0.005,
                                 loss_weighting="inverse_variance")
STEADY_MANIFOLD_RECIPE = replace(STEADY_SYNTHETIC_RECIPE, size=20, steps=MANIFOLD_STEPS,
                                 eval_every=MANIFOLD_STEPS // 20)


@dataclass(frozen=True)
class FaceSet:
    """Face models on another data set or with another network, with chapter 02's recipe
    otherwise (pairs: S1 and S2 at each N; s1_only: an S1 model alone; families.OTHER_FACES)."""

    dataset: str = "celeba"  # "celeba", "celeba_ids" (split by person), "fer2013"
    arch: str = "unet"  # or "bfcnn" (the paper's Figs 11-12 network)
    pairs: tuple = ()
    s1_only: tuple = ()


@dataclass(frozen=True)
class SizeSet:
    """Face models at another resolution with Table 1's UNet blocks for it and chapter 02's
    recipe otherwise (pairs: S1 and S2 at each N; s1_only: an S1 model alone)."""

    size: int
    pairs: tuple = ()
    s1_only: tuple = ()
    longer: tuple = ()  # (N, steps): S1 models trained for more steps (is the gap still growing?)

    @property
    def s1_ns(self) -> tuple:
        """N of its S1 models, ascending."""
        return tuple(sorted(set(self.pairs) | set(self.s1_only)))

    def longest_steps(self, n: int) -> int | None:
        """Steps of the longest `longer` run at N (None: none, the profile's own steps): the
        run a claim at N rests on, the one nearest to the end of its training."""
        return max((steps for m, steps in self.longer if m == n), default=None)


@dataclass(frozen=True)
class FaceModels:
    """Which face models a profile has (chapters 01-04; families.FACES names them)."""

    n_values: tuple  # training-set sizes N of the memorization chapter (S1 and S2 at each)
    gap_sizes: tuple = ()  # Fig 15: other face resolutions, S1 at every N (blocks from Table 1)
    more_sizes: tuple = ()  # SizeSet: other resolutions at chosen N (Fig 15, Fig 3 at 40x40)
    # chapter 02's depth control: S1/S2 models with `deeper_blocks` UNet blocks at these N,
    # trained like the chapter's models otherwise; deeper_gap_ns: more N with an S1 model only
    deeper_ns: tuple = ()
    deeper_blocks: int = 2
    deeper_gap_ns: tuple = ()

    @property
    def largest_n(self) -> int:
        return max(self.n_values)

    @property
    def deeper_curve_ns(self) -> tuple:
        """N of Fig 15's curve at the face size with deeper_blocks (S1 models)."""
        return tuple(sorted(set(self.deeper_ns) | set(self.deeper_gap_ns)))


@dataclass(frozen=True)
class CalphaModels:
    """Which C^alpha models a profile has (chapter 05; families.CALPHA names them)."""

    alphas: tuple = (1.0, 2.0, 3.0, 4.0, 5.0)  # Fig 4: contour = background regularity
    contours: tuple = (1.5, 2.0, 4.0)  # Figs 16-18: contour regularities ...
    background: float = 8.0  # ... with this background regularity
    recipe: Recipe = Recipe()
    contour_recipe: Recipe | None = None  # Figs 16-18 models (contour != background); None: recipe


@dataclass(frozen=True)
class ManifoldModels:
    """How the manifold models are trained (chapter 06: disks, ray, cone; families.MANIFOLDS)."""

    recipe: Recipe = Recipe()
    # (kind, Recipe): kinds trained otherwise, e.g. one that keeps its old recipe while the
    # new one trains in book-next; each chapter shows every model's recipe
    kind_recipes: tuple = ()

    def recipe_for(self, kind: str) -> Recipe:
        return dict(self.kind_recipes).get(kind, self.recipe)


@dataclass(frozen=True)
class WatchedRuns:
    """Face runs that draw samples from fixed seeds while they train (chapter 07: memorization
    against training time; families.WATCHED names them). Each trains exactly as the face model
    of the same N, blocks and steps: the samples leave its training untouched."""

    ns: tuple = ()  # S1 runs at these N ...
    blocks: int | None = None  # ... with this many UNet blocks (None: the profile's network)
    longer: tuple = ()  # (N, steps): S1 runs of the profile's own network, trained for longer
    seeds: int = 64  # samples drawn at each watched step, from seeds 0, 1, ...


@dataclass(frozen=True)
class Profile:
    """How big everything is. Notebooks read every size from here, never hard-code one.

    The global fields are the face models' training defaults; each family's block (faces,
    calpha, manifolds) says which models it has and how they differ from those defaults."""

    name: str
    face_size: int  # working resolution of the face chapters
    blocks: int  # UNet blocks at that resolution (Table 1)
    width: int  # base channels of every model
    steps: int  # optimizer steps per model
    batch: int
    n_seeds: int  # samples per model for statistics
    n_test: int  # held-out test faces
    n_eval: int  # images used for each PSNR-vs-sigma evaluation
    train_missing: bool  # train a model when no matching checkpoint exists
    faces: FaceModels
    lr_halvings: tuple = PAPER_LR_HALVINGS
    sigma_sampling: str = "uniform_squared"
    loss_weighting: str = "none"
    eval_every: int = 500
    device: str = "cpu"
    synthetic_size: int = 16  # resolution of every synthetic set (synthetic.py)
    synthetic_n: int = 64  # training images per synthetic model
    calpha: CalphaModels = CalphaModels()
    manifolds: ManifoldModels = ManifoldModels()
    watched: WatchedRuns = WatchedRuns()
    other_faces: tuple = ()  # FaceSet: other faces and networks (the "other faces" chapter)
    replaces: str | None = None  # a profile whose models this one retrains: only those that differ

    @property
    def second_size(self) -> SizeSet:
        """The second face resolution (Fig 15, the pair and Fig 3 at more pixels): the first of
        `faces.more_sizes`, else twice the face size with no models, so that the rows that
        need it are declared missing."""
        sets = self.faces.more_sizes
        return sets[0] if sets else SizeSet(2 * self.face_size)

    @property
    def manifold_size(self) -> int:
        """Image size of the manifold models (disks, ray, cone): one for all of them."""
        recipes = [self.manifolds.recipe, *(r for _, r in self.manifolds.kind_recipes)]
        sizes = {r.size or self.synthetic_size for r in recipes}
        if len(sizes) > 1:
            raise ValueError(f"profile {self.name!r}: the manifold recipes give the sizes "
                             f"{sorted(sizes)}; chapter 06 needs one size for all three kinds")
        return sizes.pop()

    def train_config(self, dataset: str, n_train: int, **overrides) -> TrainConfig:
        """A TrainConfig with this profile's defaults; overrides win."""
        base = dict(
            dataset=dataset,
            size=self.face_size,
            n_train=n_train,
            blocks=self.blocks,
            width=self.width,
            steps=self.steps,
            batch=self.batch,
            lr_halvings=self.lr_halvings,
            sigma_sampling=self.sigma_sampling,
            loss_weighting=self.loss_weighting,
            eval_every=self.eval_every,
        )
        base.update(overrides)
        return TrainConfig(**base)

    def recipe_config(self, dataset: str, n_train: int, recipe: Recipe,
                      data_options: tuple = ()) -> TrainConfig:
        """The TrainConfig of a synthetic set trained with `recipe` (at synthetic_size unless
        the recipe says otherwise)."""
        overrides = {"size": self.synthetic_size, **recipe.overrides()}
        return self.train_config(dataset, n_train, data_options=tuple(data_options), **overrides)


# The "other faces" chapter (paper Figs 9-14 in kind), with chapter 02's recipe: S1/S2 split by
# person (the largest N the identity halves allow is 13,214), FER2013 (the largest disjoint N
# after de-duplication is 16,051), and the BF-CNN at the book's width.
OTHER_FACES = (FaceSet("celeba_ids", pairs=(1000, 13_000)),
               FaceSet("fer2013", pairs=(10, 16_000), s1_only=(1000, )),
               FaceSet("celeba", arch="bfcnn", pairs=(13_000, ), s1_only=(10, )))

PROFILES = {
    "smoke":
    Profile(
        name="smoke",
        face_size=16,
        blocks=1,
        width=8,
        steps=40,
        batch=8,
        n_seeds=8,
        n_test=32,
        n_eval=16,
        train_missing=True,
        faces=FaceModels(
            n_values=(1, 10, 40), gap_sizes=(8, ), deeper_ns=(10, 40),
            more_sizes=(SizeSet(32, pairs=(40, ), s1_only=(10, ), longer=((40, 80), )), )),
        lr_halvings=(0.5, 0.75),
        eval_every=20,
        synthetic_size=16,
        synthetic_n=64,
        calpha=CalphaModels(alphas=(1.0, 4.0), contours=(1.5, 4.0)),
        watched=WatchedRuns(ns=(10, 40), blocks=2, seeds=8),
        other_faces=(FaceSet("celeba_ids", pairs=(10, 40)), FaceSet("fer2013", pairs=(10, 40)),
                     FaceSet("celeba", arch="bfcnn", pairs=(40, ), s1_only=(10, ))),
    ),
    "book":
    Profile(
        name="book",
        face_size=20,
        blocks=1,
        width=32,
        steps=12_000,
        batch=32,
        n_seeds=256,
        n_test=512,
        n_eval=256,
        train_missing=False,
        # 40x40 faces with Table 1's two blocks (Fig 15, the pair and Fig 3 at 40x40)
        faces=FaceModels(
            n_values=(1, 10, 100, 1000, 10_000, 13_000), gap_sizes=(10, ), deeper_ns=(10, 13_000),
            deeper_gap_ns=(100, 1000), more_sizes=(SizeSet(40, pairs=(13_000, ),
                                                           s1_only=(10, 100, 1000),
                                                           longer=((1000, 24_000), )), )),
        lr_halvings=(0.5, 0.75, 0.9),
        sigma_sampling="log_uniform",
        eval_every=1000,
        synthetic_size=32,
        synthetic_n=20_000,
        calpha=CalphaModels(
            recipe=BOOK_SYNTHETIC_RECIPE,
            # Figs 16-18 only show eigenvectors at sigma = 0.2: half the steps, to fit the budget
            contour_recipe=replace(BOOK_SYNTHETIC_RECIPE, steps=2_500, eval_every=250)),
        # manifolds at 20x20 with the steady recipe, whose two blocks see the whole image: the
        # optimal denoisers of the disks' intensities and of the face ray are global. The cone
        # keeps the one-block recipe until its steady model ships.
        manifolds=ManifoldModels(
            recipe=STEADY_MANIFOLD_RECIPE,
            kind_recipes=(("cone", replace(BOOK_SYNTHETIC_RECIPE, size=20)), )),
        # memorization against training time: the two-block control, since the one-block
        # net's samples do not copy its training faces at any N (chapter 02)
        watched=WatchedRuns(ns=(10, 100, 1000), blocks=2),
        # the other-faces chapter: faces split by person, FER2013, the BF-CNN
        other_faces=OTHER_FACES,
    ),
    "paper":
    Profile(
        # 1000 epochs of ~250k images at batch 512 = 488k steps, as in the paper.
        name="paper",
        face_size=80,
        blocks=3,
        width=64,
        steps=488_000,
        batch=512,
        n_seeds=256,
        n_test=512,
        n_eval=256,
        train_missing=True,
        faces=FaceModels(n_values=(1, 10, 100, 1000, 10_000, 13_000), gap_sizes=(40, )),
        eval_every=5000,
        device="cuda",
        watched=WatchedRuns(ns=(10, 100, 1000)),
        # synthetic sets as in the paper: 10^5 images at 80x80, the same 3-block UNet and
        # schedule (empty recipes). Figs 16-20 used the BF-CNN: Recipe(arch="bfcnn") for those.
        synthetic_size=80,
        synthetic_n=100_000,
        other_faces=OTHER_FACES,  # FER2013's 48x48 faces upsampled (bicubic) to 80x80
    ),
}
# The book's next models: recipes that replace the shipped ones, trained in their own folder
# (checkpoints/book-next/, over several sittings) while the shipped models keep serving the book.
# When every model of a family is done there, its recipe moves into "book" above and its
# checkpoints into checkpoints/book/ (DESIGN.md, "Replacing a family's models").
_book = PROFILES["book"]
PROFILES["book-next"] = replace(
    _book,
    name="book-next",
    replaces="book",
    manifolds=ManifoldModels(recipe=STEADY_MANIFOLD_RECIPE),
    # Fig 4 at the synthetic size (32x32), where the two blocks' 44x44 field covers the image.
    # The contour models of Figs 16-18 keep the book's recipe: the budget goes to Figs 4-5 first.
    calpha=replace(
        _book.calpha, recipe=replace(STEADY_SYNTHETIC_RECIPE, steps=CALPHA_STEPS,
                                     eval_every=CALPHA_STEPS // 20)),
    # faces at 40x40 with Table 1's two blocks (Fig 15, the generalization pair, Fig 3), and
    # two trained twice as long: where do Fig 15's gap at N = 1000 and Fig 3 settle?
    faces=replace(
        _book.faces, more_sizes=(SizeSet(40, pairs=(13_000, ), s1_only=(10, 100, 1000),
                                         longer=((1000, 24_000), (13_000, 24_000))), )),
    # does the chapter's own one-block net copy at N = 10 when trained three times longer?
    watched=replace(_book.watched, longer=((10, 36_000), )),
)
PROFILE_NAMES = tuple(PROFILES)


def get_profile(name: str = "book", **overrides) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILE_NAMES)}")
    return replace(PROFILES[name], **overrides)


def data_dir() -> Path:
    """Folder with the real data sets: $DIFFGEN_DATA, else ./data in the repository."""
    return Path(os.environ.get("DIFFGEN_DATA", REPO_ROOT / "data")).expanduser()


def cache_dir() -> Path:
    """Git-ignored folder for prepared arrays and non-shipped checkpoints."""
    path = Path(os.environ.get("DIFFGEN_CACHE", REPO_ROOT / "cache")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoint_dir(profile: str) -> Path:
    """book checkpoints ship with the repository; smoke and paper ones are git-ignored.
    $DIFFGEN_CHECKPOINTS moves the whole tree elsewhere (tests that run chapters)."""
    return Path(os.environ.get("DIFFGEN_CHECKPOINTS", REPO_ROOT / "checkpoints")) / profile


def batch_mode() -> bool:
    """True when the runner executes notebooks: progress bars stay quiet."""
    return os.environ.get("DIFFGEN_BATCH", "") == "1"
