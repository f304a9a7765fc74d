"""The model zoo with a tiny profile, synthetic faces made here and checkpoints in tmp_path."""
import os
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from diffgen_utils import config, data, families, zoo
from diffgen_utils.train import train

NAME = "celeba-N4-S1"


@pytest.fixture
def tiny():
    return replace(config.get_profile("smoke"), name="tiny", face_size=8, width=4, steps=4,
                   batch=4, n_test=4, n_eval=4, eval_every=2, lr_halvings=(0.5, ),
                   train_missing=True, faces=config.FaceModels(n_values=(1, 4), gap_sizes=(4, ),
                                                               deeper_ns=(4, )))


def write_faces(root, n=20, seed=0, prefix="face"):
    folder = root / "celeba80"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    imgs = np.random.default_rng(seed).integers(0, 256, size=(n, 80, 80)).astype(np.uint8)
    for i, img in enumerate(imgs):
        Image.fromarray(img).save(folder / f"{prefix}{i:03d}.png")


def no_training(*args, **kwargs):
    raise AssertionError("zoo.load trained although a matching checkpoint exists")


def test_load_trains_then_reuses(zoo_env, tiny, monkeypatch):
    root, ckpts = zoo_env
    write_faces(root)
    assert zoo.status(NAME, tiny) == "missing"
    first = zoo.load(NAME, tiny, train_missing=True)
    path = ckpts / "tiny" / f"{NAME}.pt"
    assert path.exists() and not list(ckpts.rglob("*.tmp"))
    assert first.data_checked and not first.substitute
    assert first.checkpoint["step"] == 4 and len(first.history) == 2
    assert not first.model.training and first.config.n_train == 4
    assert not (ckpts / "tiny" / "manifest.json").exists()  # only the book profile keeps one
    assert zoo.status(NAME, tiny) == "done"

    monkeypatch.setattr(zoo, "train", no_training)
    again = zoo.load(NAME, tiny, train_missing=False)
    assert again.data_checked
    assert again.checkpoint["data_fingerprint"] == first.checkpoint["data_fingerprint"]
    for key, value in first.model.state_dict().items():
        assert value.equal(again.model.state_dict()[key])


def test_missing_checkpoint_names_the_command(zoo_env, tiny):
    write_faces(zoo_env[0])
    with pytest.raises(
            FileNotFoundError, match=rf"is missing.*python -m diffgen_utils\.train --profile tiny "
            rf"--only {NAME}"):
        zoo.load(NAME, tiny, train_missing=False)
    with pytest.raises(FileNotFoundError, match="--profile tiny"):  # the profile's own setting
        zoo.load(NAME, replace(tiny, train_missing=False))


def test_stale_config_is_reported(zoo_env, tiny):
    write_faces(zoo_env[0])
    zoo.load(NAME, tiny)
    wider = replace(tiny, width=8)
    status = zoo.status(NAME, wider)
    assert status.startswith("stale") and "width: 4 -> 8" in status
    with pytest.raises(FileNotFoundError, match="another config.*width"):
        zoo.load(NAME, wider, train_missing=False)


def test_stopped_checkpoint_resumes(zoo_env, tiny):
    root, ckpts = zoo_env
    write_faces(root)
    s = zoo.spec(NAME, tiny)
    path = zoo.checkpoint_path(NAME, tiny)
    train(s.config, s.train_images(tiny), s.test_images(tiny), path, n_eval=4, stop_at=2,
          progress=False)
    assert zoo.status(NAME, tiny) == "at step 2 of 4"
    with pytest.raises(FileNotFoundError, match="stopped at step 2 of 4"):
        zoo.load(NAME, tiny, train_missing=False)
    loaded = zoo.load(NAME, tiny)
    assert loaded.checkpoint["step"] == 4 and [h["step"] for h in loaded.history] == [2, 4]


def test_data_change_is_detected(zoo_env, tiny):
    root, _ = zoo_env
    write_faces(root)
    old = zoo.load(NAME, tiny)
    write_faces(root, seed=1, prefix="other")  # other images: a new listing, a new pool
    with pytest.raises(FileNotFoundError, match="other images"):
        zoo.load(NAME, tiny, train_missing=False)
    new = zoo.load(NAME, tiny, train_missing=True)  # retrains from scratch on the new images
    assert new.checkpoint["data_fingerprint"] != old.checkpoint["data_fingerprint"]
    assert new.checkpoint["data_fingerprint"] == data.fingerprint(
        data.face_pool("celeba", 8).split(4, "S1", 4))


def test_without_data_existing_checkpoint_loads_unchecked(zoo_env, tiny, monkeypatch):
    root, ckpts = zoo_env
    write_faces(root)
    zoo.load(NAME, tiny)
    path = ckpts / "tiny" / f"{NAME}.pt"
    before = path.read_bytes()
    shutil.rmtree(root / "celeba80")
    monkeypatch.setattr(zoo, "train", no_training)
    loaded = zoo.load(NAME, tiny, train_missing=False)
    assert not loaded.data_checked and not loaded.substitute
    # a profile that trains must not replace it by a model of the synthetic substitute either
    loaded = zoo.load(NAME, tiny, train_missing=True)
    assert not loaded.data_checked and not loaded.substitute
    assert path.read_bytes() == before


def test_without_data_trains_on_substitute_only_where_allowed(zoo_env, tiny, monkeypatch):
    with pytest.raises(data.DataError, match="DIFFGEN_DATA"):  # book-like: never a substitute
        zoo.load(NAME, replace(tiny, train_missing=False), train_missing=True)
    sub = zoo.load(NAME, tiny)
    assert sub.substitute and sub.data_checked
    monkeypatch.setattr(zoo, "train", no_training)
    assert zoo.load(NAME, tiny).substitute


def test_model_names(tiny):
    assert families.model_names(tiny) == [
        "celeba-N1-S1", "celeba-N1-S2", "celeba-N4-S1", "celeba-N4-S2", "celeba_shuffled-N4-S1",
        "celeba-N1-S1-4px", "celeba-N4-S1-4px", "celeba-N4-S1-2blocks", "celeba-N4-S2-2blocks"
    ]
    p = config.get_profile("book")
    book = families.model_names(p)[:2 * len(p.faces.n_values) + 1]
    assert book[:-1] == [f"celeba-N{n}-{s}" for n in p.faces.n_values for s in ("S1", "S2")]
    assert zoo.spec(book[-1], p, with_data=False).config.dataset == "celeba_shuffled"
    with pytest.raises(KeyError, match="unknown model name"):
        zoo.spec("celeba-N4-S3", tiny)


def test_training_lock_refuses_a_live_owner_and_takes_over_a_dead_one(tmp_path):
    path = tmp_path / "m.pt"
    with zoo.training_lock(path):
        assert (tmp_path / "m.pt.lock").read_text() == str(os.getpid())
        with pytest.raises(zoo.ModelBusy, match="being trained by process"):
            with zoo.training_lock(path):
                pass
    assert not (tmp_path / "m.pt.lock").exists()
    (tmp_path / "m.pt.lock").write_text("999999999")  # no such process
    with zoo.training_lock(path):
        pass


def test_gap_models_at_another_resolution():
    book = config.get_profile("book")
    name = families.FACES.name(book, 100, size=10)
    assert name == "celeba-N100-S1-10px" and name in families.model_names(book)
    cfg = zoo.spec(name, book, with_data=False).config
    assert (cfg.size, cfg.n_train, cfg.subset, cfg.blocks) == (10, 100, "S1", 1)
    assert zoo.spec("celeba-N100-S1-40px", book, with_data=False).config.blocks == 2
    with pytest.raises(KeyError, match="own face size"):
        zoo.spec("celeba-N100-S1-20px", book, with_data=False)
    assert config.unet_blocks(80) == 3 and config.unet_blocks(160) == 4


def test_deeper_models_differ_only_in_blocks():
    book = config.get_profile("book")
    name = families.FACES.name(book, 10, "S2", blocks=2)
    assert name == "celeba-N10-S2-2blocks" and name in families.model_names(book)
    deeper = zoo.spec(name, book, with_data=False).config
    plain = zoo.spec("celeba-N10-S2", book, with_data=False).config
    assert deeper.blocks == 2 and deeper == replace(plain, blocks=2)
    deeper_names = [m for m in families.model_names(book) if m.endswith("blocks")]
    assert deeper_names == [
        "celeba-N10-S1-2blocks", "celeba-N10-S2-2blocks", "celeba-N13000-S1-2blocks",
        "celeba-N13000-S2-2blocks", "celeba-N100-S1-2blocks", "celeba-N1000-S1-2blocks"
    ]
    assert book.faces.deeper_curve_ns == (10, 100, 1000, 13000)
    assert zoo.spec("celeba-N10-S1-40px-3blocks", book, with_data=False).config.blocks == 3
    with pytest.raises(KeyError, match="default at 20x20"):
        zoo.spec("celeba-N10-S1-1blocks", book, with_data=False)
    with pytest.raises(KeyError, match="divisible"):
        zoo.spec("celeba-N10-S1-3blocks", book, with_data=False)


def test_contour_models_use_their_own_recipe():
    book = config.get_profile("book")
    contour = zoo.spec("calpha-c4-b8-N20000", book, with_data=False).config
    plain = zoo.spec("calpha4-N20000", book, with_data=False).config
    assert (contour.steps, plain.steps) == (book.calpha.contour_recipe.steps,
                                            book.calpha.recipe.steps)
    assert contour.steps < plain.steps
    smoke = config.get_profile("smoke")  # no contour recipe: the calpha recipe
    assert zoo.spec("calpha-c4-b8-N64", smoke, with_data=False).config.steps == smoke.steps


def test_a_manifold_kind_may_keep_its_own_recipe():
    book, nxt = config.get_profile("book"), config.get_profile("book-next")
    disks, cone = (families.config_of(f"{k}-N20000", book) for k in ("disks", "cone"))
    assert (disks.blocks, disks.steps) == (2, config.MANIFOLD_STEPS)
    assert (cone.blocks, cone.steps) == (1, config.BOOK_SYNTHETIC_RECIPE.steps)
    assert families.config_of("cone-N20000",
                              nxt) == replace(families.config_of("ray-N20000", nxt),
                                              dataset="cone", data_options=cone.data_options)
    assert families.model_names(nxt, "manifolds") == ["cone-N20000"]  # the others shipped
    odd = replace(
        book, manifolds=replace(
            book.manifolds, kind_recipes=(("cone", replace(config.BOOK_SYNTHETIC_RECIPE,
                                                           size=32)), )))
    with pytest.raises(ValueError, match="one size for all three"):
        odd.manifold_size


def test_a_replacing_profile_lists_only_the_models_it_trains_differently():
    nxt, book = config.get_profile("book-next"), config.get_profile("book")
    names = families.model_names(nxt, family="all")
    shipped = families.model_names(book, family="all")
    new = [name for name in names if name not in shipped]  # models book does not have (yet)
    added = {
        name
        for family in ("faces", "other_faces", "watched")
        for name in families.model_names(nxt, family)
    }
    assert names and set(new) == added - set(shipped)
    for name in shipped:
        differs = (zoo.spec(name, nxt, with_data=False).config
                   != zoo.spec(name, book, with_data=False).config)
        assert (name in names) == differs, name
    assert zoo.checkpoint_path(names[0],
                               nxt).parent == config.REPO_ROOT / "checkpoints" / "book-next"


def test_other_face_sets_are_named_and_listed_where_declared():
    book, nxt = config.get_profile("book"), config.get_profile("book-next")
    other = families.OTHER_FACES
    assert other.name(book, 13000, "S2", arch="bfcnn") == "celeba-N13000-S2-bfcnn"
    cfg = families.config_of("celeba-N13000-S2-bfcnn", book)
    assert (cfg.arch, cfg.subset, cfg.size, cfg.steps) == ("bfcnn", "S2", 20, book.steps)
    assert cfg == replace(families.config_of("celeba-N13000-S2", book), arch="bfcnn")
    assert families.config_of("celeba_ids-N1000-S1", book).dataset == "celeba_ids"
    assert other.name(book, 10, "S2", dataset="fer2013") == "fer2013-N10-S2"
    with pytest.raises(KeyError, match="chapter 02's"):
        other.name(book, 10)  # a CelebA UNet
    with pytest.raises(KeyError, match="unknown model name"):
        families.config_of("celeba-N10-S1-2blocks-bfcnn", book)
    others = families.model_names(book, "other_faces")
    assert others == [
        "celeba_ids-N1000-S1", "celeba_ids-N1000-S2", "celeba_ids-N13000-S1",
        "celeba_ids-N13000-S2", "fer2013-N10-S1", "fer2013-N10-S2", "fer2013-N16000-S1",
        "fer2013-N16000-S2", "fer2013-N1000-S1", "celeba-N13000-S1-bfcnn",
        "celeba-N13000-S2-bfcnn", "celeba-N10-S1-bfcnn"
    ]
    assert families.model_names(nxt, "other_faces") == []  # shipped: book-next retrains none
    assert zoo.checkpoint_path(others[0], book).parent.name == "book"
    assert zoo.checkpoint_path(others[0], nxt).parent.name == "book"


def test_watched_runs_train_as_the_face_model_they_name_and_sample_as_they_go():
    book, nxt = config.get_profile("book"), config.get_profile("book-next")
    name = families.WATCHED.name(book, 100, blocks=2)
    assert name == "celeba-N100-S1-2blocks-watched"
    assert families.config_of(name, book) == families.config_of("celeba-N100-S1-2blocks", book)
    longer = families.config_of("celeba-N10-S1-36000steps-watched", nxt)
    assert longer == replace(families.config_of("celeba-N10-S1", book), steps=36_000)
    assert families.model_names(
        book, "watched") == [f"celeba-N{n}-S1-2blocks-watched" for n in book.watched.ns]
    assert "celeba-N10-S1-36000steps-watched" in families.model_names(nxt, "all")
    assert zoo.watch_of(name, book).seeds == book.watched.seeds
    assert zoo.watch_of(name, book).steps[-1] == book.steps
    assert zoo.watch_of("celeba-N100-S1-2blocks", book) is None
    assert families.WATCHED.same_as(name) == "celeba-N100-S1-2blocks"
    assert families.WATCHED.same_as("celeba-N10-S1-36000steps-watched") is None
    with pytest.raises(KeyError, match="more steps"):
        families.config_of(f"celeba-N10-S1-{book.steps}steps-watched", book)
    with pytest.raises(KeyError, match="unknown model name"):
        families.config_of("celeba-N10-S2-watched", book)  # S1 runs only


def test_faces_at_another_size_are_declared_with_table_1s_blocks():
    book, nxt = config.get_profile("book"), config.get_profile("book-next")

    def declared(size_set):
        pairs = {f"celeba-N{n}-{s}-40px" for n in size_set.pairs for s in ("S1", "S2")}
        alone = {f"celeba-N{n}-S1-40px" for n in size_set.s1_only}
        return pairs | alone | {f"celeba-N{n}-S1-40px-{k}steps" for n, k in size_set.longer}

    shipped = [n for n in families.model_names(book, "faces") if "-40px" in n]
    assert set(shipped) == declared(book.second_size) and "celeba-N13000-S2-40px" in shipped
    names = families.model_names(nxt, "faces")  # book-next trains the rest of the set
    assert set(names) == declared(nxt.second_size) - set(shipped)
    cfg = families.config_of("celeba-N13000-S2-40px", nxt)
    assert (cfg.size, cfg.blocks, cfg.subset, cfg.steps) == (40, 2, "S2", nxt.steps)
    longer = families.FACES.name(nxt, 1000, size=40, steps=24_000)
    assert longer == "celeba-N1000-S1-40px-24000steps"
    assert families.config_of(longer,
                              nxt) == replace(families.config_of("celeba-N1000-S1-40px", nxt),
                                              steps=24_000)  # the schedule stretched
    assert families.FACES.name(nxt, 1000, size=40, steps=nxt.steps) == "celeba-N1000-S1-40px"
    with pytest.raises(KeyError, match="more steps"):
        families.config_of(f"celeba-N10-S1-{nxt.steps}steps", nxt)
    for name in declared(nxt.second_size):  # each read from where it was trained
        folder = "book-next" if name in names else "book"
        assert zoo.checkpoint_path(name, nxt).parent.name == folder


def test_promote_moves_finished_models_and_their_manifest_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFGEN_CHECKPOINTS", str(tmp_path))
    book, src, dst = config.get_profile("book"), tmp_path / "book-next", tmp_path / "book"
    same, other = "celeba-N10-S1", "calpha1-N20000"  # book-next trains only the second otherwise
    steps = {same: 10, other: 10**9}
    monkeypatch.setattr(
        zoo, "load_checkpoint", lambda path:
        {"config": families.config_of(path.stem, book).to_dict(), "step": steps[path.stem]})
    src.mkdir()
    (src / f"{same}.pt").write_bytes(b"weights")
    with pytest.raises(ValueError, match=f"{other}: no checkpoint in"):
        zoo.promote([same, other])
    (src / f"{other}.pt").write_bytes(b"weights")
    zoo._write_manifest(src / "manifest.json", {same: {"steps": 1}, other: {"steps": 2}})
    with pytest.raises(ValueError, match=f"{same}: at step 10 of 12000"):
        zoo.promote([same])
    steps[same] = 12_000
    monkeypatch.setattr(
        zoo, "load_checkpoint", lambda path: {
            "config": families.config_of(path.stem, config.get_profile("book-next")).to_dict(),
            "step": steps[path.stem]
        })
    with pytest.raises(ValueError, match=f"{other}: book would train it with another config"):
        zoo.promote([same, other])  # and nothing moved
    assert (src / f"{same}.pt").exists() and not dst.exists()
    with pytest.raises(ValueError, match="replaces none"):
        zoo.promote([same], "book")
    assert zoo.promote([same]) == dst
    assert (dst / f"{same}.pt").read_bytes() == b"weights" and not (src / f"{same}.pt").exists()
    assert zoo._read_manifest(dst / "manifest.json") == {same: {"steps": 1}}
    assert zoo._read_manifest(src / "manifest.json") == {other: {"steps": 2}}
