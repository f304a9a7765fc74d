"""Data pipeline on small synthetic images made here; one test, skipped without it, checks the
shipped id lists against the real face data folder (DIFFGEN_DATA)."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffgen_utils import data
from diffgen_utils.data import DataError


def rng(seed=0):
    return np.random.default_rng(seed)


def save(arr, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(path)
    return path


def faces(n, size=80, seed=0):
    """Independent random uint8 images in [50, 150] (room for a*x+b copies without clipping)."""
    return rng(seed).integers(50, 151, size=(n, size, size)).astype(np.uint8)


def as_tensor(images):
    return data.to_tensor(np.asarray(images, dtype=np.uint8))


# ---------------------------------------------------------------- raw CelebA
def test_celeba_crop_is_29_9_and_output_sizes():
    rgb = np.zeros((218, 178, 3), np.uint8)
    rgb[29:-29, 9:-9] = 255  # the 160x160 crop is white, the border black
    out = data.celeba_preprocess(rgb, 80)
    assert out.shape == (80, 80) and out.dtype == np.uint8
    assert out.min() >= 250
    assert data.celeba_preprocess(rgb, 20).shape == (20, 20)
    # one more row of the border (a crop shifted by one) would bring black into the edge
    rgb[29] = 0
    assert data.celeba_preprocess(rgb, 80)[0].max() < 250


def test_celeba_crop_orientation():
    rgb = np.zeros((218, 178, 3), np.uint8)
    rgb[29:109, 9:-9] = 255  # top half of the crop white, bottom half black
    out = data.celeba_preprocess(rgb, 20).astype(int)
    assert out[:9].min() >= 250 and out[11:].max() <= 5


def test_celeba_gray_is_mean_of_rgb():
    rgb = np.empty((218, 178, 3), np.uint8)
    rgb[...] = (30, 90, 210)
    assert np.all(data.celeba_preprocess(rgb, 80) == 110)


def test_celeba_wrong_size_raises():
    with pytest.raises(DataError, match="218x178"):
        data.celeba_preprocess(np.zeros((200, 178, 3), np.uint8))


def raw_celeba(folder, n=3):
    folder.mkdir(parents=True)
    imgs = rng(1).integers(0, 256, size=(n, 218, 178, 3)).astype(np.uint8)
    for i, img in enumerate(imgs):
        Image.fromarray(img).save(folder / f"{i:06d}.{'png' if i % 2 else 'jpg'}")
    return imgs


def test_prepare_celeba_writes_one_png_per_image(tmp_path):
    raw = tmp_path / "img_align_celeba"
    imgs = raw_celeba(raw)
    out = tmp_path / "prepared" / "celeba80"
    assert data.prepare_celeba(raw, out) == 3
    assert sorted(p.name for p in out.iterdir()) == ["000000.png", "000001.png", "000002.png"]
    with Image.open(out / "000001.png") as im:  # a PNG input: lossless, exactly the pipeline
        assert im.size == (80, 80) and im.mode == "L"
        assert np.array_equal(np.asarray(im), data.celeba_preprocess(imgs[1]))
    assert [p.name for p in out.parent.iterdir()] == ["celeba80"]  # no temporary left over
    with pytest.raises(DataError, match="exists already"):
        data.prepare_celeba(raw, out)


@pytest.mark.parametrize("bad", ["garbage", "truncated", "wrong_size"])
def test_prepare_celeba_is_atomic(tmp_path, bad):
    raw = tmp_path / "img_align_celeba"
    raw_celeba(raw)
    path = raw / "000009.jpg"  # sorts last: the other files are written first
    if bad == "garbage":
        path.write_bytes(b"this is not a jpeg")
    elif bad == "truncated":
        save(rng().integers(0, 256, (218, 178, 3)), path)
        path.write_bytes(path.read_bytes()[:500])
    else:
        save(np.zeros((100, 100, 3)), path)
    out = tmp_path / "prepared" / "celeba80"
    with pytest.raises(DataError, match="000009.jpg" if bad != "wrong_size" else "218x178"):
        data.prepare_celeba(raw, out)
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # no half-prepared temporary folder either


# ---------------------------------------------------------------- image folders, FER2013
def test_load_image_folder_sorted_uint8(tmp_path):
    for name, value in (("b", 20), ("a", 10), ("c", 30)):
        save(np.full((6, 5), value), tmp_path / f"{name}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    images, stems = data.load_image_folder(tmp_path)
    assert stems == ["a", "b", "c"]
    assert images.dtype == np.uint8 and images.shape == (3, 6, 5)
    assert images[:, 0, 0].tolist() == [10, 20, 30]


def test_load_image_folder_rgb_is_mean_gray(tmp_path):
    rgb = np.empty((4, 4, 3), np.uint8)
    rgb[...] = (0, 30, 90)
    save(rgb, tmp_path / "x.png")
    assert np.all(data.load_image_folder(tmp_path)[0] == 40)


def test_load_image_folder_missing(tmp_path):
    with pytest.raises(DataError, match="does not exist.*DIFFGEN_DATA"):
        data.load_image_folder(tmp_path / "nope")


def test_load_image_folder_without_images(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no images"):
        data.load_image_folder(tmp_path)


@pytest.mark.parametrize("kind", ["truncated", "garbage"])
def test_load_image_folder_unreadable(tmp_path, kind):
    save(np.zeros((8, 8)), tmp_path / "a.png")
    bad = tmp_path / "b.jpg"
    if kind == "truncated":
        save(rng().integers(0, 256, (64, 64)), bad)
        bad.write_bytes(bad.read_bytes()[:300])
    else:
        bad.write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match="cannot read image .*b.jpg"):
        data.load_image_folder(tmp_path)


def test_load_image_folder_mixed_sizes(tmp_path):
    save(np.zeros((8, 8)), tmp_path / "a.png")
    save(np.zeros((8, 9)), tmp_path / "b.png")
    with pytest.raises(DataError, match="mixed image sizes.*b.png"):
        data.load_image_folder(tmp_path)


def fer_layout(root, files):
    for i, rel in enumerate(files):
        save(np.full((8, 8), 10 * i), root / f"{rel}.png")


def test_load_fer2013_layout(tmp_path):
    fer_layout(tmp_path, ["train/happy/0", "train/angry/1", "train/angry/0", "test/angry/0"])
    images, names = data.load_fer2013(tmp_path)
    assert names == ["test/angry/0", "train/angry/0", "train/angry/1", "train/happy/0"]
    assert images.shape == (4, 8, 8) and images.dtype == np.uint8
    assert images[:, 0, 0].tolist() == [30, 20, 10, 0]


def test_load_fer2013_wrong_layout(tmp_path):
    save(np.zeros((8, 8)), tmp_path / "flat.png")
    with pytest.raises(DataError, match="FER2013 layout"):
        data.load_fer2013(tmp_path)


# ---------------------------------------------------------------- resizing, duplicates
def test_resize_integer_factor_is_block_mean():
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    blocks = x.reshape(3, 1, 4, 4, 4, 4).mean(dim=(3, 5))
    assert torch.allclose(data.resize(x, 4), blocks, atol=1e-6, rtol=0)
    same = data.resize(x, 16)
    assert torch.equal(same, x) and same is not x


def test_resize_non_integer_is_bicubic_in_range():
    x = (torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    y = data.resize(x, 6)
    expected = torch.nn.functional.interpolate(x, size=(6, 6), mode="bicubic", antialias=True,
                                               align_corners=False).clamp(0, 1)
    assert y.shape == (3, 1, 6, 6) and torch.allclose(y, expected)
    assert y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("shape", [(2, 1, 16, 12), (2, 1, 12, 16), (1, 16, 16)])
def test_resize_refuses_what_it_would_distort(shape):
    with pytest.raises(ValueError) as caught:
        data.resize(torch.rand(shape), 8)
    message = str(caught.value)
    assert f"got shape {shape}" in message and "square images (N, 1, H, H)" in message
    assert "Crop them to a square first" in message


def duplicate_set():
    """8 independent images, then a*x+b copies of 0, 2 and of the copy of 0 (at 40x40)."""
    base = faces(8, size=40).astype(float)
    copies = [1.3 * base[0] + 10, 0.8 * base[2] - 20, 0.9 * (1.3 * base[0] + 10) + 5]
    stack = np.concatenate([base, np.rint(copies)])
    assert stack.min() >= 0 and stack.max() <= 255
    return as_tensor(stack)  # indices 8, 9, 10 are the copies


def test_mean_removed_cosine_sees_affine_copies():
    images = duplicate_set()
    pairs = set(data.near_duplicate_pairs(images))
    assert pairs == {(0, 8), (2, 9), (0, 10), (8, 10)}


def test_remove_near_duplicates_keeps_first_of_each_group():
    images = duplicate_set()
    assert data.remove_near_duplicates(images).tolist() == list(range(8))
    # a copy placed before its original: the earlier one (the copy) is kept
    reordered = images[torch.tensor([8, 1, 0, 3])]
    assert data.remove_near_duplicates(reordered).tolist() == [0, 1, 3]


def test_near_duplicate_threshold_is_respected():
    a, b = faces(2, size=40, seed=3).astype(float)
    mixed = np.rint(0.5 * a + 0.25 * b)
    images = as_tensor(np.stack([a, mixed]))
    unit = data.mean_removed_unit(data.resize(images, data.DEDUP_SIZE))
    cos = float(unit[0] @ unit[1])
    assert 0.5 < cos < 0.95
    assert data.near_duplicate_pairs(images, threshold=cos - 0.01) == [(0, 1)]
    assert data.near_duplicate_pairs(images, threshold=cos + 0.01) == []
    assert data.remove_near_duplicates(images).tolist() == [0, 1]  # default 0.95
    assert data.remove_near_duplicates(images, threshold=cos - 0.01).tolist() == [0]


@pytest.mark.parametrize("threshold", [0.95, 0.0])
def test_near_duplicate_pairs_blockwise_equals_unblocked(threshold):
    images = torch.cat([duplicate_set(), as_tensor(faces(6, size=40, seed=7))])
    whole = data.near_duplicate_pairs(images, threshold, block=len(images))
    blocked = data.near_duplicate_pairs(images, threshold, block=3)
    assert sorted(blocked) == sorted(whole)
    assert all(i < j for i, j in whole) and len(set(whole)) == len(whole)
    if threshold == 0.0:
        assert len(whole) > 20  # many pairs, across block boundaries


# ---------------------------------------------------------------- pools and splits
def numbered_pool(n=20):
    images = torch.arange(n, dtype=torch.float32).div(100).view(n, 1, 1, 1).expand(n, 1, 4, 4)
    return data.FacePool("test", images.clone(), [f"f{i}" for i in range(n)], 0, "numbers")


def ids_of(images):
    return set(torch.round(images[:, 0, 0, 0] * 100).long().tolist())


def test_split_disjoint_and_deterministic():
    pool = numbered_pool()
    test = ids_of(pool.test(4))
    s1, s2 = ids_of(pool.split(8, "S1", 4)), ids_of(pool.split(8, "S2", 4))
    assert len(s1) == len(s2) == 8 and len(test) == 4
    assert not (s1 & s2) and not (s1 & test) and not (s2 & test)
    assert torch.equal(pool.split(8, "S1", 4), pool.split(8, "S1", 4))
    assert ids_of(pool.split(3, "S1", 4)) < s1  # S1 of a smaller N is nested in S1
    assert ids_of(pool.split(3, "S2", 4)) < s2


def test_split_too_large_names_largest_n():
    pool = numbered_pool()
    assert pool.max_n(4) == 8
    with pytest.raises(DataError, match=r"largest N: 8"):
        pool.split(9, "S1", 4)
    with pytest.raises(ValueError, match="S1"):
        pool.split(2, "S3", 4)
    with pytest.raises(ValueError, match="at least 1"):
        pool.split(0, "S2", 4)  # images[-0:] would be the whole pool


def fingerprint_images():
    return torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def test_fingerprint():
    x = fingerprint_images()
    fp = data.fingerprint(x)
    assert len(fp) == 16 and fp == data.fingerprint(x.clone()) == data.fingerprint(
        fingerprint_images())
    y = x.clone()
    y[3, 0, 2, 5] += 1 / 255
    assert data.fingerprint(y) != fp


# ---------------------------------------------------------------- face_pool
def celeba80(root, n=30, n_copies=5):
    """n images named img000.. in celeba80/; the last n_copies are a*x+b copies of earlier
    ones. Returns the stems kept by de-duplication."""
    imgs = faces(n - n_copies, seed=11).astype(float)
    for k in range(n - n_copies):
        save(imgs[k], root / "celeba80" / f"img{k:03d}.png")
    for k in range(n_copies):
        copy = np.rint(1.1 * imgs[3 * k] + 5 * k)
        save(copy, root / "celeba80" / f"img{n - n_copies + k:03d}.png")
    return [f"img{k:03d}" for k in range(n - n_copies)]


def test_face_pool_dedups_orders_and_caches(data_env, tmp_path, monkeypatch):
    kept = celeba80(data_env)
    pool = data.face_pool("celeba", 20, substitute_ok=False)
    assert not pool.substitute and pool.n_duplicates == 5
    assert pool.images.shape == (25, 1, 20, 20) and pool.images.dtype == torch.float32
    perm = np.random.default_rng(data.POOL_SEED).permutation(25)
    assert pool.ids == [kept[i] for i in perm]
    # images are the files, in that order, as block means at 20x20
    first = np.array(Image.open(data_env / "celeba80" / f"{pool.ids[0]}.png"))
    assert torch.allclose(pool.images[0], data.resize(as_tensor(first[None]), 20)[0], atol=1e-6)

    caches = list((tmp_path / "cache").glob("pool_celeba_20_*.npz"))
    assert len(caches) == 1
    mtime = caches[0].stat().st_mtime_ns

    def no_read(name):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(data, "_read_source", no_read)
    again = data.face_pool("celeba", 20)
    assert again.ids == pool.ids and torch.equal(again.images, pool.images)
    assert again.n_duplicates == 5 and again.source == pool.source
    assert caches[0].stat().st_mtime_ns == mtime
    assert not list((tmp_path / "cache").glob("*.tmp*"))


def test_face_pool_decodes_the_images_once_for_every_size(data_env, monkeypatch):
    celeba80(data_env)
    at20 = data.face_pool("celeba", 20, substitute_ok=False)

    def no_read(name):
        raise AssertionError("the images were decoded again")

    monkeypatch.setattr(data, "_read_source", no_read)
    at10 = data.face_pool("celeba", 10, substitute_ok=False)
    assert at10.ids == at20.ids and at10.n_duplicates == at20.n_duplicates
    assert torch.allclose(at10.images, data.resize(at20.images, 10), atol=1e-6)
    assert at10.images.shape == (25, 1, 10, 10)


def test_face_pool_new_listing_new_cache(data_env, tmp_path):
    celeba80(data_env, n=12, n_copies=2)
    assert len(data.face_pool("celeba", 20).images) == 10
    save(faces(1, seed=99)[0], data_env / "celeba80" / "new.png")
    assert len(data.face_pool("celeba", 20).images) == 11
    assert len(list((tmp_path / "cache").glob("pool_celeba_20_*.npz"))) == 2


def test_face_pool_fer2013_cache_follows_listing(data_env, tmp_path):
    root = data_env / "fer2013"
    imgs = faces(7, size=40, seed=5)
    for k, rel in enumerate([
            "train/angry/0", "train/angry/1", "train/happy/0", "test/happy/0", "test/sad/0",
            "test/sad/1"
    ]):
        save(imgs[k], root / f"{rel}.png")
    pool = data.face_pool("fer2013", 20, substitute_ok=False)
    assert len(pool.images) == 6 and not pool.substitute
    assert sorted(pool.ids)[0] == "test/happy/0"
    save(imgs[6], root / "validation" / "angry" / "0.png")
    pool = data.face_pool("fer2013", 20, substitute_ok=False)  # not the stale cached pool
    assert len(pool.images) == 7 and "validation/angry/0" in pool.ids
    assert len(list((tmp_path / "cache").glob("pool_fer2013_20_*.npz"))) == 2


@pytest.mark.parametrize("name, fix", [("celeba", "Prepare it with diffgen-prepare-celeba"),
                                       ("fer2013", "Crop every image to a square")])
def test_face_pool_refuses_non_square_images(data_env, name, fix):
    folder = data_env / ("celeba80" if name == "celeba" else "fer2013/train/angry")
    for k, image in enumerate(rng().integers(0, 256, size=(3, 40, 32))):
        save(image, folder / f"{k}.png")
    with pytest.raises(
            DataError, match=r"holds 40x32 images \(height x width\); face pools "
            r"need square images\. " + fix):
        data.face_pool(name, 20, substitute_ok=False)


def test_face_pool_refuses_a_cached_pool_of_another_size(data_env, tmp_path):
    celeba80(data_env, n=12, n_copies=2)
    data.face_pool("celeba", 20)
    (cache, ) = (tmp_path / "cache").glob("pool_celeba_20_*.npz")
    z = dict(np.load(cache))
    np.savez(cache, **{**z, "images": z["images"][..., :16, :16]})  # e.g. a hand-copied file
    with pytest.raises(
            DataError, match=r"\(10, 1, 16, 16\) with 10 ids, expected "
            r"\(N, 1, 20, 20\) with N ids; delete the file"):
        data.face_pool("celeba", 20)


@pytest.mark.parametrize("name", ["celeba", "fer2013"])
def test_face_pool_without_data(data_env, tmp_path, name):
    pool = data.face_pool(name, 16)
    assert pool.substitute and pool.images.shape[1:] == (1, 16, 16)
    assert 0 <= pool.images.min() and pool.images.max() <= 1
    with pytest.raises(DataError, match="DIFFGEN_DATA"):
        data.face_pool(name, 16, substitute_ok=False)
    assert not list((tmp_path / "cache").glob("*.npz"))


def test_shuffled_faces_use_one_fixed_invertible_permutation():
    images = torch.rand(3, 1, 6, 6)
    shuffled = data.shuffle_pixels(images)
    assert not torch.equal(shuffled, images)
    assert torch.equal(data.shuffle_pixels(images), shuffled)  # the same permutation each time
    assert torch.equal(data.shuffle_pixels(shuffled, inverse=True), images)
    # one permutation for all images: pixel k of every image moves to the same place
    k = int(torch.nonzero(shuffled[0].flatten() == images[0].flatten()[5])[0])
    assert torch.equal(shuffled[:, 0].flatten(1)[:, k], images[:, 0].flatten(1)[:, 5])


def test_identity_groups_share_nobody_and_keep_the_framings_balanced():
    rng = np.random.default_rng(0)
    stems = [f"{k:06d}" for k in range(2000)]
    person = {
        s: int(rng.integers(0, 400)) + (0 if k < 800 else 1000)  # framings share nobody
        for k, s in enumerate(stems)
    }
    aligned = [k < 800 for k in range(2000)]
    groups = data.identity_groups(stems, person, aligned, seed=1, test_share=0.05)
    people = {g: {person[stems[i]] for i in idx} for g, idx in groups.items()}
    assert not (people["S1"] & people["S2"] or people["test"] & (people["S1"] | people["S2"]))
    assert sorted(np.concatenate(list(groups.values()))) == list(range(2000))  # every image once
    assert all(list(idx) == sorted(idx) for idx in groups.values())  # in pool order
    assert 0.05 <= len(groups["test"]) / 2000 < 0.07  # whole identities: a little over the share
    sizes = [len(groups["S1"]), len(groups["S2"])]
    assert abs(sizes[0] - sizes[1]) <= 2 * max(np.bincount(list(person.values())))
    for g in ("test", "S1", "S2"):  # both framings in every group, in the pool's shares
        assert abs(np.mean([aligned[i] for i in groups[g]]) - 0.4) < 0.05
    assert {g: list(i) for g, i in data.identity_groups(stems, person, aligned, seed=1,
                                                         test_share=0.05).items()} == \
        {g: list(i) for g, i in groups.items()}  # seeded


def test_identity_pool_splits_by_person(data_env):
    pool = data.face_pool("celeba_ids", 8)  # the stand-in data set of the tests
    assert isinstance(pool, data.IdentityPool) and pool.name == "celeba_ids"
    n = pool.max_n(2)
    s1, s2 = pool.split(n, "S1", 2), pool.split(n, "S2", 2)
    assert len(s1) == len(s2) == n
    assert torch.equal(pool.split(1, "S1", 2), s1[:1])  # a smaller N is a subset
    assert not set(pool.groups["S1"]) & set(pool.groups["S2"])
    with pytest.raises(data.DataError, match="outside 1.."):
        pool.split(n + 1, "S1", 2)
    with pytest.raises(data.DataError, match="test faces asked"):
        pool.test(len(pool.groups["test"]) + 1)


def test_identity_pool_reads_celebas_identities(data_env):
    stems = [f"{k:06d}" for k in list(range(1, 31)) + list(range(182638, 182668))]
    for k, (stem, image) in enumerate(zip(stems, faces(60, seed=5))):
        save(image, data_env / "celeba80" / f"{stem}.png")
    person = {stem: k // 3 for k, stem in enumerate(stems)}  # 20 people, 3 faces each
    meta = data_env / "celeba_meta"
    meta.mkdir()
    with pytest.raises(DataError, match="identity file"):
        data.face_pool("celeba_ids", 8)
    (meta / "identity_CelebA.txt").write_text("".join(f"{stem}.jpg {p}\n"
                                                      for stem, p in person.items()))
    pool = data.face_pool("celeba_ids", 8)
    who = {g: {person[pool.ids[i][:6]] for i in idx} for g, idx in pool.groups.items()}
    assert not (who["S1"] & who["S2"]) and not (who["test"] & (who["S1"] | who["S2"]))
    plain = data.face_pool("celeba", 8)
    assert data.identity_overlap(pool, pool.max_n(1), 1) == 0.0
    assert 0.0 < data.identity_overlap(plain, 25, 1) <= 1.0  # neighbours in the pool share people


def test_identity_overlap_of_test_faces(data_env):
    stems = [f"{k:06d}" for k in range(1, 13)]
    for stem, image in zip(stems, faces(12, seed=6)):
        save(image, data_env / "celeba80" / f"{stem}.png")
    pool = data.face_pool("celeba", 8)
    # people in pool order: test (3 faces) | S1 at N = 4 | one face | S2 at N = 4
    people = [1, 2, 3] + [1, 4, 5, 6] + [7] + [4, 5, 8, 9]
    meta = data_env / "celeba_meta"
    meta.mkdir()
    (meta / "identity_CelebA.txt").write_text("".join(f"{i}.jpg {p}\n"
                                                      for i, p in zip(pool.ids, people)))
    assert data.identity_overlap(pool, 4, 3) == 0.5  # people 4 and 5 of S2 are in S1
    assert data.identity_overlap(pool, 4, 3, of="test") == pytest.approx(1 / 3)  # person 1
    assert data.identity_overlap(pool, 1, 3, of="test") == pytest.approx(1 / 3)
    assert data.identity_overlap(pool, 1, 3) == 0.0  # S1 = person 1, S2 = person 9
    with pytest.raises(ValueError, match="'S2' or 'test'"):
        data.identity_overlap(pool, 4, 3, of="S1")


# ---------------------------------------------------------------- the shipped id lists
def test_framing_counts():
    ids = ["000001", "010000.png", "010001", "182638.png", "202599"]
    assert data.framing_counts(ids) == {"aligned": 2, "box": 3}


def test_shipped_id_lists_are_the_data_folders_files():
    """The lists in data_ids/ name the 27,476 files of the shared celeba80/ folder once
    (../shared/data/README.md: all of 000001-010000, and 17,476 of the test split's
    182638-202599), and the pool keeps all but the near-duplicates."""
    pool, dropped = data.shipped_ids()
    assert len(pool) == 26_986 and len(dropped) == 490  # the book's pool: 490 dropped
    assert len(set(pool)) == len(pool) and not set(pool) & set(dropped)
    assert dropped == sorted(dropped)
    ids = sorted(int(name.removesuffix(".png")) for name in pool + dropped)
    assert all(name.endswith(".png") and len(name) == 10 for name in pool + dropped)
    assert ids[:10_000] == list(range(1, 10_001))
    assert len(ids[10_000:]) == 17_476 and ids[10_000] >= 182_638 and ids[-1] <= 202_599
    assert pool != sorted(pool)  # the seeded order, not the file order
    assert data.framing_counts(pool) == {"aligned": 9_975, "box": 17_011}


def shipped_layout(data_env, tmp_path):
    """A small celeba80 folder with 5 near-duplicates, and its id lists written to tmp_path."""
    celeba80(data_env)
    pool = data.face_pool("celeba", 20, substitute_ok=False)
    ids_dir = tmp_path / "ids"
    data.write_celeba_ids(pool, data._source_listing("celeba"), ids_dir)
    return pool, ids_dir


def test_write_celeba_ids_round_trip(data_env, tmp_path):
    pool, ids_dir = shipped_layout(data_env, tmp_path)
    in_pool, dropped = data.shipped_ids(ids_dir)
    assert in_pool == [f"{i}.png" for i in pool.ids]
    assert dropped == [f"img{k:03d}.png" for k in range(25, 30)]  # the a*x+b copies
    data.check_celeba_folder(ids_dir=ids_dir)
    data.check_pool_order(pool, ids_dir)
    assert data.check_celeba_data(ids_dir=ids_dir) == 25


def test_check_celeba_folder_names_missing_and_extra_files(data_env, tmp_path):
    pool, ids_dir = shipped_layout(data_env, tmp_path)
    folder = data_env / "celeba80"
    (folder / "img004.png").unlink()
    with pytest.raises(DataError) as caught:
        data.check_celeba_folder(ids_dir=ids_dir)
    message = str(caught.value)
    assert "1 of the 30 listed faces are missing (img004.png)" in message
    assert "diffgen-prepare-celeba" in message and "Rebuilding the pool elsewhere" in message
    assert "not in the lists" not in message
    save(faces(1, seed=40)[0], folder / "img004.png")
    data.check_celeba_folder(ids_dir=ids_dir)  # names only: the pixels are not compared here
    save(faces(1, seed=41)[0], folder / "010001.png")
    with pytest.raises(
            DataError, match=r"1 images are not in the lists \(010001.png\): move "
            r"them out of .*celeba80"):
        data.check_celeba_folder(ids_dir=ids_dir)


def test_check_pool_order_finds_other_pixels_and_other_orders(data_env, tmp_path):
    pool, ids_dir = shipped_layout(data_env, tmp_path)
    lines = (ids_dir / data.POOL_IDS_FILE).read_text().splitlines()
    lines[2], lines[3] = lines[3], lines[2]
    (ids_dir / data.POOL_IDS_FILE).write_text("\n".join(lines) + "\n")
    with pytest.raises(
            DataError, match=rf"kept 25 faces \(the list has 25\), and at position 2 "
            rf"the pool has {pool.ids[2]} where the list has "
            rf"{pool.ids[3]}"):
        data.check_pool_order(pool, ids_dir)
    lines[2], lines[3] = lines[3], lines[2]
    (ids_dir / data.POOL_IDS_FILE).write_text("\n".join(lines) + "\n")
    data.check_pool_order(pool, ids_dir)
    # same file names, other pixels: img001 becomes a copy of img000, so de-duplication drops
    # it and the seeded order of the 24 kept faces is another one
    folder = data_env / "celeba80"
    copy = np.asarray(Image.open(folder / "img000.png"), dtype=float) * 0.9 + 7
    save(np.rint(copy), folder / "img001.png")
    data.check_celeba_folder(ids_dir=ids_dir)
    with pytest.raises(
            DataError, match=r"kept 24 faces \(the list has 25\).*images differ.*"
            r"python -m diffgen_utils.train --profile book"):
        data.check_celeba_data(ids_dir=ids_dir)


def test_check_celeba_folder_without_lists(data_env, tmp_path):
    celeba80(data_env, n=6, n_copies=1)
    with pytest.raises(DataError, match=r"id list .*celeba80_pool.txt not found.*git checkout"):
        data.check_celeba_folder(ids_dir=tmp_path / "nowhere")


def test_prepare_celeba_main_check(data_env, tmp_path, monkeypatch, capsys):
    pool, ids_dir = shipped_layout(data_env, tmp_path)
    monkeypatch.setattr(data, "IDS_DIR", ids_dir)
    data.prepare_celeba_main(["--check"])
    assert "holds the shipped CelebA pool: 25 faces" in capsys.readouterr().out
    (data_env / "celeba80" / "img007.png").unlink()
    with pytest.raises(SystemExit, match=r"error: .*missing \(img007.png\)"):
        data.prepare_celeba_main(["--check"])
    with pytest.raises(SystemExit):
        data.prepare_celeba_main([])  # neither a folder to prepare nor --check
    assert "give the img_align_celeba/ folder" in capsys.readouterr().err


REAL_CELEBA = os.environ.get("DIFFGEN_DATA") and \
    (Path(os.environ["DIFFGEN_DATA"]) / "celeba80" / "202599.png").is_file()


@pytest.mark.skipif(not REAL_CELEBA, reason="DIFFGEN_DATA does not point at the face data")
def test_shipped_ids_match_the_real_data_folder():
    """On the real data (CI: ../shared/data): the folder holds exactly the listed files and the
    pool, as the book builds it (from its cache when there is one), is in the listed order."""
    data.check_celeba_folder()
    pool = data.face_pool("celeba", 20, substitute_ok=False)
    data.check_pool_order(pool)
    assert pool.n_duplicates == len(data.shipped_ids()[1])
