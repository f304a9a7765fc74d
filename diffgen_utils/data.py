"""Face data: the raw CelebA pipeline, image folders, FER2013, de-duplication and S1/S2 splits.

Images are float32 tensors in [0, 1] of shape (N, 1, H, W). The face pool of a data set is
read once, de-duplicated, put in a fixed seeded order and cached (git-ignored) at the working
resolution; splits are slices of that order:

    pool order:  [ test (n_test) | S1 (first N after test) | ... | S2 (last N) ]

`celeba_ids` splits the same pool by person instead (`IdentityPool`): the test faces, S1 and
S2 come from three groups of CelebA identities that share nobody.

The CelebA pool's file names, in pool order, are shipped in `data_ids/` (with the faces that
de-duplication drops): `check_celeba_folder` and `check_pool_order` compare a data folder and
its pool with them, so a pool rebuilt elsewhere can be checked (README, "Rebuilding the pool
elsewhere").
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import config

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff"}
POOL_SEED = 20231004  # the fixed permutation of every de-duplicated pool
PIXEL_SEED = 21  # the fixed pixel permutation of shuffled faces
DEDUP_SIZE, DEDUP_THRESHOLD = 20, 0.95  # paper: cosine > 0.95 on 20x20 mean-removed copies
CELEBA_CROP = (slice(29, -29), slice(9, -9))  # 218x178 aligned CelebA -> 160x160
IDENTITY_SEED = 20261129  # the fixed shuffle of the identities of `celeba_ids`
IDENTITY_TEST_SHARE = 0.02  # of each framing's faces, by whole identities, go to the test group
ALIGNED_LAST_ID = 10_000  # celeba80 ids up to this are aligned crops, the rest face boxes
IDS_DIR = config.REPO_ROOT / "data_ids"  # the shipped id lists of the CelebA pool
POOL_IDS_FILE = "celeba80_pool.txt"  # the pool's file names, in pool order
DUPLICATE_IDS_FILE = "celeba80_duplicates.txt"  # the files de-duplication drops, sorted


class DataError(RuntimeError):
    """A data folder or file is missing or malformed; the message says how to fix it."""


# ---------------------------------------------------------------- reading images
def list_images(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist. Set DIFFGEN_DATA to the folder "
                        f"that holds it (see README, 'Data').")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return files


def read_gray(path: Path) -> np.ndarray:
    """One image as float64 gray in [0, 255]; gray = plain mean of R, G, B (as the paper)."""
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(
                im.convert("RGB") if im.mode not in ("L", "I;16") else im, dtype=np.float64)
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"cannot read image {path}: {err}. Delete or replace the file.") from err
    return arr.mean(axis=2) if arr.ndim == 3 else arr


def load_image_folder(folder: Path) -> tuple[np.ndarray, list[str]]:
    """All images of a folder (sorted by name) as uint8 (N, H, W), with their file stems."""
    files = list_images(folder)
    first = read_gray(files[0])
    out = np.empty((len(files), *first.shape), dtype=np.uint8)
    for i, path in enumerate(files):
        img = first if i == 0 else read_gray(path)
        if img.shape != first.shape:
            raise DataError(f"mixed image sizes in {folder}: {files[0].name} is {first.shape}, "
                            f"{path.name} is {img.shape}. Prepare the folder at one size.")
        out[i] = np.clip(np.rint(img), 0, 255)
    return out, [p.stem for p in files]


def load_fer2013(root: Path) -> tuple[np.ndarray, list[str]]:
    """FER2013 in its {train,validation,test}/{emotion}/*.png layout, in sorted path order."""
    root = Path(root)
    folders = sorted(p for p in root.glob("*/*") if p.is_dir())
    if not folders:
        raise DataError(f"{root} does not have the FER2013 layout split/emotion/*.png")
    arrays, names = [], []
    for folder in folders:
        imgs, stems = load_image_folder(folder)
        arrays.append(imgs)
        names += [f"{folder.parent.name}/{folder.name}/{s}" for s in stems]
    sizes = {a.shape[1:] for a in arrays}
    if len(sizes) > 1:
        raise DataError(f"mixed image sizes in {root}: {sorted(sizes)}")
    return np.concatenate(arrays), names


# ---------------------------------------------------------------- raw CelebA
def celeba_preprocess(rgb: np.ndarray, size: int = 80) -> np.ndarray:
    """Aligned 218x178 CelebA image -> the paper's crop [29:-29, 9:-9], gray, bicubic `size`."""
    if rgb.shape[:2] != (218, 178):
        raise DataError(f"aligned CelebA images are 218x178, got {rgb.shape[:2]}; use the "
                        f"img_align_celeba folder")
    gray = rgb.astype(np.float64).mean(axis=2) if rgb.ndim == 3 else rgb.astype(np.float64)
    crop = Image.fromarray(gray[CELEBA_CROP].astype(np.float32), mode="F")
    small = np.asarray(crop.resize((size, size), Image.BICUBIC))
    return np.clip(np.rint(small), 0, 255).astype(np.uint8)


def prepare_celeba(raw_dir: Path, out_dir: Path, size: int = 80) -> int:
    """img_align_celeba/*.jpg -> out_dir/*.png at `size`. Written to a temporary folder first,
    then renamed, so a stopped run never leaves a half-prepared folder."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if out_dir.exists():
        raise DataError(f"{out_dir} exists already; remove it to prepare again")
    files = list_images(raw_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", dir=out_dir.parent))
    try:
        for path in files:
            try:
                with Image.open(path) as im:
                    rgb = np.asarray(im.convert("RGB"))
            except (OSError, SyntaxError, ValueError) as err:
                raise DataError(f"cannot read {path}: {err}") from err
            Image.fromarray(celeba_preprocess(rgb, size)).save(tmp / f"{path.stem}.png")
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # no half-prepared folder left behind
        raise
    return len(files)


def prepare_celeba_main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Prepare CelebA as the paper does.")
    parser.add_argument("raw_dir", nargs="?", help="the img_align_celeba/ folder (218x178 JPEGs)")
    parser.add_argument("--out", default=None, help="default: $DIFFGEN_DATA/celeba80")
    parser.add_argument("--size", type=int, default=80)
    parser.add_argument(
        "--check", action="store_true",
        help="prepare nothing: check the --out folder against the shipped id "
        "lists of data_ids/ (file names, then the de-duplicated pool order)")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else config.data_dir() / f"celeba{args.size}"
    if args.check:
        try:
            count = check_celeba_data(out)
        except DataError as err:
            raise SystemExit(f"error: {err}") from None
        print(f"{out} holds the shipped CelebA pool: {count} faces after de-duplication, "
              f"in the order of data_ids/{POOL_IDS_FILE}")
        return
    if args.raw_dir is None:
        parser.error("give the img_align_celeba/ folder to prepare, or --check")
    try:
        count = prepare_celeba(Path(args.raw_dir), out, args.size)
    except DataError as err:
        raise SystemExit(f"error: {err}") from None
    print(f"prepared {count} images in {out}")


# ---------------------------------------------------------------- resizing, duplicates
def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) -> float32 (N, 1, H, W) in [0, 1]."""
    return torch.from_numpy(images).float().div_(255).unsqueeze(1)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Downsample square images (N, 1, H, H) to size x size: exact block means for integer
    factors, antialiased bicubic otherwise."""
    if images.ndim != 4 or images.shape[-2] != images.shape[-1]:
        raise ValueError(f"resize takes square images (N, 1, H, H); got shape "
                         f"{tuple(images.shape)}, which it would distort. Crop them to a square "
                         f"first, e.g. images[..., top:top + s, left:left + s] with s = min(H, W) "
                         f"(CelebA: diffgen-prepare-celeba crops the aligned faces to 160x160)")
    h = images.shape[-1]
    if h == size:
        return images.clone()
    if h % size == 0:
        return F.avg_pool2d(images, h // size)
    return F.interpolate(images, size=(size, size), mode="bicubic", antialias=True,
                         align_corners=False).clamp_(0, 1)


def mean_removed_unit(x: torch.Tensor) -> torch.Tensor:
    """Flatten, subtract each image's mean and normalise to unit norm."""
    flat = x.reshape(len(x), -1).double()
    flat = flat - flat.mean(dim=1, keepdim=True)
    return flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)


def near_duplicate_pairs(images: torch.Tensor, threshold: float = DEDUP_THRESHOLD,
                         block: int = 2048) -> list[tuple[int, int]]:
    """All pairs i < j whose mean-removed cosine exceeds `threshold`, computed in blocks."""
    unit = mean_removed_unit(resize(images, DEDUP_SIZE)).float()
    pairs = []
    for start in range(0, len(unit), block):
        sims = unit[start:start + block] @ unit.T
        rows, cols = torch.nonzero(sims > threshold, as_tuple=True)
        rows = rows + start
        keep = rows < cols
        pairs += list(zip(rows[keep].tolist(), cols[keep].tolist()))
    return pairs


def remove_near_duplicates(images: torch.Tensor, threshold: float = DEDUP_THRESHOLD) -> np.ndarray:
    """Indices to keep: going in order, an image is dropped when it is a near-duplicate of an
    earlier image that was kept."""
    dropped = np.zeros(len(images), dtype=bool)
    for i, j in sorted(near_duplicate_pairs(images, threshold)):
        if not dropped[i]:
            dropped[j] = True
    return np.flatnonzero(~dropped)


# ---------------------------------------------------------------- face pools and splits
@dataclass
class FacePool:
    """A de-duplicated data set in its fixed order, at the working resolution."""

    name: str
    images: torch.Tensor  # (N, 1, size, size) float32 in [0, 1]
    ids: list[str]  # source file names, same order
    n_duplicates: int  # images dropped as near-duplicates
    source: str  # where the images came from (shown on the page)
    substitute: bool = False  # True when a synthetic stand-in replaces missing real data

    def split(self, n: int, subset: str, n_test: int) -> torch.Tensor:
        """S1 = the first n images after the test block, S2 = the last n; disjoint."""
        return self.images[self.indices(subset, n, n_test)]

    def test(self, n_test: int) -> torch.Tensor:
        return self.images[self.indices("test", n_test, n_test)]

    def indices(self, group: str, n: int, n_test: int) -> np.ndarray:
        """Pool indices of a group: "test" (its first n), "S1" or "S2" at N = n."""
        if group == "test":
            return np.arange(min(n, n_test))
        if group not in ("S1", "S2"):
            raise ValueError(f"subset must be 'S1' or 'S2', got {group!r}")
        if n < 1:
            raise ValueError(f"N must be at least 1, got {n}")
        if 2 * n + n_test > len(self.images):
            raise DataError(f"{self.name}: two disjoint subsets of N={n} plus {n_test} test "
                            f"images need {2 * n + n_test} images; the pool has "
                            f"{len(self.images)} (largest N: {self.max_n(n_test)})")
        start = n_test if group == "S1" else len(self.images) - n
        return np.arange(start, start + n)

    def max_n(self, n_test: int) -> int:
        return (len(self.images) - n_test) // 2


@dataclass
class IdentityPool(FacePool):
    """A pool split by person: `groups` holds the indices (in pool order) of the test group and
    of S1's and S2's halves, which share no identity. S1 and S2 at N are the first N of their
    half, so a smaller N is a subset of a larger one, as in FacePool."""

    groups: dict = field(default_factory=dict)  # "test", "S1", "S2" -> np.ndarray of indices

    def indices(self, group: str, n: int, n_test: int) -> np.ndarray:
        if group == "test":
            if n_test > len(self.groups["test"]):
                raise DataError(f"{self.name}: {n_test} test faces asked, the test identities "
                                f"have {len(self.groups['test'])}")
            return self.groups["test"][:min(n, n_test)]
        if group not in ("S1", "S2"):
            raise ValueError(f"subset must be 'S1' or 'S2', got {group!r}")
        if not 1 <= n <= self.max_n(n_test):
            raise DataError(f"{self.name}: N={n} is outside 1..{self.max_n(n_test)}, the "
                            f"images of the smaller identity half")
        return self.groups[group][:n]

    def max_n(self, n_test: int) -> int:
        return min(len(self.groups["S1"]), len(self.groups["S2"]))


def read_identities() -> dict[str, int]:
    """CelebA's person id of every celeba80 image, by file stem ("000001" -> 2880)."""
    path = config.data_dir() / "celeba_meta" / "identity_CelebA.txt"
    if not path.exists():
        raise DataError(f"{path} not found: the identity split needs CelebA's identity file "
                        f"(celeba_meta/ in the data folder, see its README)")
    pairs = (line.split() for line in path.read_text().splitlines() if line.strip())
    return {Path(name).stem: int(person) for name, person in pairs}


def identity_groups(stems: list[str], identity: dict[str, int], aligned: list[bool],
                    seed: int = IDENTITY_SEED,
                    test_share: float = IDENTITY_TEST_SHARE) -> dict[str, np.ndarray]:
    """Split images by person into a test group and two halves S1, S2.

    Each framing (aligned crops, face boxes) is split on its own, so that the three groups hold
    both in the same shares: identities in a seeded order go to the test group until it has
    `test_share` of that framing's images, then each to the half with fewer images so far.
    Returns sorted indices into `stems` (the pool order)."""
    rng = np.random.default_rng(seed)
    groups = {"test": [], "S1": [], "S2": []}
    for framing in (True, False):
        members = defaultdict(list)
        for i, stem in enumerate(stems):
            if aligned[i] == framing:
                members[identity[stem]].append(i)
        people = sorted(members)
        rng.shuffle(people)
        n_images = sum(len(m) for m in members.values())
        count = {"test": 0, "S1": 0, "S2": 0}
        for person in people:
            group = ("test" if count["test"] < test_share *
                     n_images else "S1" if count["S1"] <= count["S2"] else "S2")
            groups[group] += members[person]
            count[group] += len(members[person])
    return {g: np.array(sorted(i), dtype=np.int64) for g, i in groups.items()}


def people_and_framing(pool: FacePool) -> tuple[list[int], list[bool]]:
    """Per image of a CelebA pool: its person (CelebA identity) and whether it is an aligned
    crop (else a face box). On the synthetic stand-in every image counts as its own person and
    the first half as aligned."""
    stems = [Path(i).stem for i in pool.ids]
    if pool.substitute:
        return list(range(len(stems))), [k < len(stems) // 2 for k in range(len(stems))]
    identity = read_identities()
    missing = [s for s in stems if s not in identity]
    if missing:
        raise DataError(f"no identity for {len(missing)} faces (e.g. {missing[0]}) in "
                        f"celeba_meta/identity_CelebA.txt; it must list every celeba80 image")
    return [identity[s] for s in stems], [int(s) <= ALIGNED_LAST_ID for s in stems]


def identity_pool(size: int, substitute_ok: bool = True) -> IdentityPool:
    """The CelebA pool split by person (`celeba_ids`), framings balanced across the groups."""
    pool = face_pool("celeba", size, substitute_ok)
    people, aligned = people_and_framing(pool)
    stems = [Path(i).stem for i in pool.ids]
    return IdentityPool("celeba_ids", pool.images, pool.ids, pool.n_duplicates,
                        pool.source + ", split by identity", pool.substitute,
                        groups=identity_groups(stems, dict(zip(stems, people)), aligned))


def identity_overlap(pool: FacePool, n: int, n_test: int, of: str = "S2") -> float:
    """Share of S2's faces at N (of="test": of the n_test test faces) whose person also appears
    in S1 at N (CelebA identities)."""
    if of not in ("S2", "test"):
        raise ValueError(f"of must be 'S2' or 'test', got {of!r}")
    identity = read_identities()
    if isinstance(pool, IdentityPool):
        s1, s2, test = pool.groups["S1"][:n], pool.groups["S2"][:n], pool.groups["test"][:n_test]
    else:
        s1 = np.arange(n_test, n_test + n)
        s2 = np.arange(len(pool.ids) - n, len(pool.ids))
        test = np.arange(n_test)
    person = [identity[Path(face_id).stem] for face_id in pool.ids]
    in_s1 = {person[k] for k in s1}
    return float(np.mean([person[k] in in_s1 for k in (s2 if of == "S2" else test)]))


def fingerprint(images: torch.Tensor) -> str:
    """Short sha256 of the exact training images (float32 bytes)."""
    data = images.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def _source_folder(name: str) -> Path:
    if name == "celeba":
        return config.data_dir() / "celeba80"
    if name == "fer2013":
        return config.data_dir() / "fer2013"
    raise ValueError(f"unknown face data set {name!r}; use 'celeba' or 'fer2013'")


def _source_listing(name: str) -> list[str]:
    """The sorted image file names of a data set, relative to its folder (DataError if absent)."""
    folder = _source_folder(name)
    if name == "celeba":
        return [p.name for p in list_images(folder)]
    subfolders = sorted(p for p in folder.glob("*/*") if p.is_dir())
    if not subfolders:
        raise DataError(f"{folder} does not have the FER2013 layout split/emotion/*.png")
    return [p.relative_to(folder).as_posix() for sub in subfolders for p in list_images(sub)]


def has_faces(name: str = "celeba") -> bool:
    """Whether the real data set is in the data folder (else chapters use a stand-in)."""
    try:
        _source_listing(name)
    except DataError:
        return False
    return True


def _read_source(name: str) -> tuple[np.ndarray, list[str], str]:
    root = config.data_dir()
    if name == "celeba":
        folder = root / "celeba80"
        imgs, ids = load_image_folder(folder)
        return imgs, ids, str(folder)
    if name == "fer2013":
        imgs, ids = load_fer2013(root / "fer2013")
        return imgs, ids, str(root / "fer2013")
    raise ValueError(f"unknown face data set {name!r}; use 'celeba' or 'fer2013'")


def pixel_permutation(size: int) -> torch.Tensor:
    """The one fixed permutation of the size*size pixels used for shuffled faces."""
    return torch.randperm(size * size, generator=torch.Generator().manual_seed(PIXEL_SEED))


def shuffle_pixels(images: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """Apply (or undo) the fixed pixel permutation to images (..., size, size)."""
    perm = pixel_permutation(images.shape[-1])
    if inverse:
        perm = torch.argsort(perm)
    return images.flatten(-2)[..., perm].reshape(images.shape)


def face_pool(name: str = "celeba", size: int = 20, substitute_ok: bool = True) -> FacePool:
    """The de-duplicated, seeded-order face pool at `size`, cached under cache/.

    `celeba_shuffled` is the CelebA pool with every image's pixels permuted by one fixed
    permutation. Without the data folder: a synthetic stand-in when `substitute_ok`, else a
    DataError.
    """
    if name == "celeba_ids":
        return identity_pool(size, substitute_ok)
    if name == "celeba_shuffled":
        pool = face_pool("celeba", size, substitute_ok)
        return FacePool(name, shuffle_pixels(pool.images), pool.ids, pool.n_duplicates,
                        pool.source + ", pixels shuffled", pool.substitute)
    try:
        listing = _source_listing(name)
    except DataError as err:
        if not substitute_ok:
            hint = "run diffgen-prepare-celeba" if name == "celeba" else "unpack FER2013 there"
            raise DataError(f"{name} not found in {_source_folder(name)} ({err}). Set "
                            f"DIFFGEN_DATA (CI: ../shared/data) or {hint}.") from err
        return substitute_pool(size)
    key = hashlib.sha256("|".join(listing).encode()).hexdigest()[:10]
    cache = config.cache_dir() / f"pool_{name}_{size}_{key}.npz"
    if cache.exists():
        z = np.load(cache)
        images, ids = z["images"], [str(i) for i in z["ids"]]
        if images.shape[1:] != (1, size, size) or len(images) != len(ids):
            raise DataError(f"cached pool {cache} holds images of shape {images.shape} with "
                            f"{len(ids)} ids, expected (N, 1, {size}, {size}) with N ids; delete "
                            f"the file, and the next run rebuilds it from the data folder")
        return FacePool(name, torch.from_numpy(images), ids, int(z["n_duplicates"]),
                        str(z["source"]))
    raw, ids, n_duplicates, source = ordered_source(name, key)
    pool = FacePool(name, resize(to_tensor(raw), size), ids, n_duplicates, source)
    _save_atomic(cache, images=pool.images.numpy(), ids=np.array(pool.ids),
                 n_duplicates=n_duplicates, source=source)
    return pool


def ordered_source(name: str, key: str) -> tuple[np.ndarray, list[str], int, str]:
    """A data set's images as stored (uint8, N x H x H), de-duplicated and in pool order, with
    their file names, the number dropped and the folder. Decoded once per listing `key` and
    cached, so that every pool size after the first is a resize of this array."""
    cache = config.cache_dir() / f"pool_{name}_source_{key}.npz"
    if cache.exists():
        z = np.load(cache)
        return z["images"], [str(i) for i in z["ids"]], int(z["n_duplicates"]), str(z["source"])
    raw, ids, source = _read_source(name)
    if raw.shape[1] != raw.shape[2]:
        fix = ("Prepare it with diffgen-prepare-celeba, which crops the aligned 218x178 faces "
               "to 160x160" if name == "celeba" else "Crop every image to a square")
        raise DataError(f"{source} holds {raw.shape[1]}x{raw.shape[2]} images (height x width); "
                        f"face pools need square images. {fix}.")
    order = pool_order(to_tensor(raw))
    ordered, ordered_ids = raw[order], [ids[i] for i in order]
    _save_atomic(cache, images=ordered, ids=np.array(ordered_ids),
                 n_duplicates=len(raw) - len(order), source=source)
    return ordered, ordered_ids, len(raw) - len(order), source


def _save_atomic(path: Path, **arrays) -> None:
    """np.savez to a unique temporary file, then rename: concurrent builds may race."""
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=path.parent)
    os.close(fd)
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def pool_order(full: torch.Tensor) -> np.ndarray:
    """The pool order of a data set's images (N, 1, H, W), in sorted file order: the indices
    that de-duplication keeps, in the fixed POOL_SEED permutation."""
    keep = remove_near_duplicates(full)
    return keep[np.random.default_rng(POOL_SEED).permutation(len(keep))]


# ---------------------------------------------------------------- the shipped id lists
REBUILD_HINT = "README, 'Rebuilding the pool elsewhere'"


def framing_counts(ids) -> dict[str, int]:
    """How many CelebA faces (ids or file names) are aligned crops and how many face-box crops
    reframed by the rule of the data folder (ids above ALIGNED_LAST_ID)."""
    box = sum(int(Path(i).stem) > ALIGNED_LAST_ID for i in ids)
    return {"aligned": len(ids) - box, "box": box}


def read_id_list(path: Path) -> list[str]:
    """One file name a line (blank lines ignored)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"id list {path} not found: it ships with the repository in data_ids/; "
                        f"restore it with git checkout -- {path.parent.name}/{path.name}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def shipped_ids(ids_dir: Path | None = None) -> tuple[list[str], list[str]]:
    """(the pool's file names in pool order, the file names de-duplication drops)."""
    ids_dir = Path(ids_dir or IDS_DIR)
    return read_id_list(ids_dir / POOL_IDS_FILE), read_id_list(ids_dir / DUPLICATE_IDS_FILE)


def write_celeba_ids(pool: FacePool, listing: list[str], ids_dir: Path | None = None) -> None:
    """Write the id lists of `pool`, built from the files `listing` (names in its folder)."""
    ids_dir = Path(ids_dir or IDS_DIR)
    name = {Path(f).stem: f for f in listing}
    in_pool = [name[i] for i in pool.ids]
    dropped = sorted(set(listing) - set(in_pool))
    if len(in_pool) + len(dropped) != len(listing) or len(dropped) != pool.n_duplicates:
        raise ValueError("the pool was not built from these files")
    ids_dir.mkdir(parents=True, exist_ok=True)
    (ids_dir / POOL_IDS_FILE).write_text("".join(f + "\n" for f in in_pool))
    (ids_dir / DUPLICATE_IDS_FILE).write_text("".join(f + "\n" for f in dropped))


def _examples(names, k: int = 3) -> str:
    names = sorted(names)
    return ", ".join(names[:k]) + (", ..." if len(names) > k else "")


def check_celeba_folder(folder: Path | None = None, ids_dir: Path | None = None) -> None:
    """Check that a celeba80 folder (default $DIFFGEN_DATA/celeba80) holds exactly the files of
    the shipped id lists (the pool and the faces de-duplication drops): no more, no fewer.
    Raises DataError naming the files that differ and what to do."""
    folder = Path(folder or _source_folder("celeba"))
    pool_ids, dropped = shipped_ids(ids_dir)
    expected = set(pool_ids) | set(dropped)
    present = {p.name for p in list_images(folder)}
    missing, extra = expected - present, present - expected
    if not (missing or extra):
        return
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} of the {len(expected)} listed faces are missing "
            f"({_examples(missing)}): prepare them (ids up to {ALIGNED_LAST_ID:06d}: aligned "
            f"crops, diffgen-prepare-celeba; the others: face-box crops reframed by the rule "
            f"of {REBUILD_HINT})")
    if extra:
        problems.append(
            f"{len(extra)} images are not in the lists ({_examples(extra)}): move them out of "
            f"{folder}, since every image there enters the pool")
    raise DataError(f"{folder} is not the shipped CelebA pool ({(ids_dir or IDS_DIR)}/"
                    f"{POOL_IDS_FILE} and {DUPLICATE_IDS_FILE}): " + "; ".join(problems) +
                    ". Otherwise the pool, its S1/S2 subsets and the data fingerprints of the "
                    "shipped checkpoints differ.")


def check_pool_order(pool: FacePool, ids_dir: Path | None = None) -> None:
    """Check that a built CelebA pool holds the shipped faces in the shipped order; DataError
    at the first difference."""
    want = [Path(f).stem for f in shipped_ids(ids_dir)[0]]
    got = [Path(i).stem for i in pool.ids]
    if got == want:
        return
    k = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    at = (f"at position {k} the pool has {got[k] if k < len(got) else 'nothing'} where the "
          f"list has {want[k] if k < len(want) else 'nothing'}")
    raise DataError(
        f"the CelebA pool built from {pool.source} is not the shipped one "
        f"({ids_dir or IDS_DIR}/{POOL_IDS_FILE}): de-duplication kept {len(got)} faces (the list "
        f"has {len(want)}), and {at}. Where the file names match (check_celeba_folder), the "
        f"images differ from those the list was made from (another preparation or "
        f"resampling), so de-duplication kept other faces, or the cached pool is stale. Fix: "
        f"prepare the faces as {REBUILD_HINT} says and delete cache/pool_celeba_*.npz; or, to "
        f"use these images as they are, train the book's models on them (python -m "
        f"diffgen_utils.train --profile book): the shipped checkpoints do not fit them.")


def check_celeba_data(folder: Path | None = None, ids_dir: Path | None = None) -> int:
    """The full check of a celeba80 folder: its file names (`check_celeba_folder`), then the
    pool rebuilt from its images (not from the cache) against the shipped order. Returns the
    pool's size. Reads every image: about half a minute for the 27,476 faces."""
    folder = Path(folder or _source_folder("celeba"))
    check_celeba_folder(folder, ids_dir)
    raw, ids = load_image_folder(folder)
    order = pool_order(to_tensor(raw))
    check_pool_order(
        FacePool("celeba", torch.empty(0), [ids[i] for i in order],
                 len(raw) - len(order), str(folder)), ids_dir)
    return len(order)


def substitute_pool(size: int, n: int = 4096, seed: int = 0) -> FacePool:
    """A synthetic stand-in for faces when no data folder exists: smooth random ellipses on
    graded backgrounds. Pages that use it say so."""
    g = torch.Generator().manual_seed(seed)
    r = torch.linspace(-1, 1, size)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    p = torch.rand(n, 8, generator=g)
    cx, cy = (p[:, 0] - 0.5) * 0.4, (p[:, 1] - 0.5) * 0.4
    ax, ay = 0.45 + 0.3 * p[:, 2], 0.55 + 0.3 * p[:, 3]
    inside = ((xx - cx[:, None, None]) / ax[:, None, None]) ** 2 \
        + ((yy - cy[:, None, None]) / ay[:, None, None]) ** 2
    mask = torch.sigmoid((1 - inside) * size / 2)
    fg = 0.3 + 0.6 * p[:, 4, None, None] + 0.2 * (p[:, 5, None, None] - 0.5) * yy
    bg = 0.1 + 0.5 * p[:, 6, None, None] + 0.2 * (p[:, 7, None, None] - 0.5) * xx
    images = (mask * fg + (1 - mask) * bg).clamp(0, 1).unsqueeze(1).float()
    return FacePool("substitute", images, [f"synthetic{i:05d}" for i in range(n)], 0,
                    "synthetic ellipses (no face data found)", substitute=True)


if __name__ == "__main__":
    prepare_celeba_main()
