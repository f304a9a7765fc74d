"""The other-faces chapter's measures on toy images and a toy identity file (no checkpoints)."""
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from diffgen_utils import config, data, pairs, sampling
from diffgen_utils.chapters import other_faces as of


def images(n, seed, size=6):
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


def stats_with_pairs(pair):
    """PairStats whose S1/S2 cosines are `pair` (S2 samples built at that angle to S1's)."""
    pair = torch.as_tensor(pair, dtype=torch.float64)
    a = data.mean_removed_unit(images(len(pair), 1)).float()
    b = data.mean_removed_unit(images(len(pair), 2)).double()
    b = b - (b * a.double()).sum(1, keepdim=True) * a.double()  # orthogonal to a, mean-free
    b = b / b.norm(dim=1, keepdim=True)
    s2 = pair[:, None] * a.double() + (1 - pair[:, None]**2).sqrt() * b
    s1, s2 = a.reshape(-1, 1, 6, 6), s2.float().reshape(-1, 1, 6, 6)
    return pairs.similarity_stats(s1, s2, images(5, 3), images(5, 4))


def test_roles_find_their_face_sets_and_names():
    book_next = config.get_profile("book")
    assert of.largest_n(book_next, "identity") == 13_000
    assert of.model_name(book_next, "fer2013", 10, "S2") == "fer2013-N10-S2"
    assert of.model_name(book_next, "bfcnn", 13_000) == "celeba-N13000-S1-bfcnn"
    with pytest.raises(ValueError, match="declares no identity face set"):
        of.face_set(config.get_profile("book", other_faces=()), "identity")
    with pytest.raises(ValueError, match="unknown face-set role"):
        of.face_set(book_next, "lsun")


def test_low_agreement_share_counts_seeds_below_the_cut():
    pair = torch.tensor([0.95, 0.79, 0.81, 0.5])
    assert of.low_agreement_share(pair) == 0.5
    measures = of.low_agreement_measures(stats_with_pairs(pair))
    assert measures["measured"] == 0.5
    lo, hi = measures["interval"]
    assert 0 <= lo <= 0.5 <= hi <= 1


def test_extremes_put_the_most_alike_seeds_first():
    pair = [0.2, 0.9, 0.5, 0.99]
    stats = stats_with_pairs(pair)
    samples = sampling.Samples(images(4, 7), [0, 1, 2, 3], sampling.SamplerSettings(),
                               torch.ones(4), torch.ones(4, dtype=bool), [])
    comp = pairs.Comparison(samples, replace(samples, images=images(4, 8)), images(5, 3),
                            images(5, 4), stats)
    grid, titles, rows = of.extremes(comp, 2)
    assert grid.shape == (8, 1, 6, 6) and len(rows) == 4
    assert titles[:2] == ["pair 0.99", "pair 0.90"] and titles[4:6] == ["pair 0.20", "pair 0.50"]
    assert torch.equal(grid[0], samples.images[3].clamp(0, 1))


def test_split_people_reads_who_is_in_which_group(data_env):
    # 12 faces in pool order; persons: test 0-1, S1 = faces 2-4, S2 = faces 9-11
    stems = [f"{k:06d}" for k in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20_001, 20_002)]
    persons = [1, 2, 3, 3, 4, 5, 6, 7, 8, 3, 9, 1]
    meta = data_env / "celeba_meta"
    meta.mkdir()
    (meta / "identity_CelebA.txt").write_text("".join(f"{s}.jpg {p}\n"
                                                      for s, p in zip(stems, persons)))
    pool = data.FacePool("celeba", images(12, 0), [f"{s}.png" for s in stems], 0, "toy")
    groups = of.split_people(pool, 3, 2)
    assert groups["S1"] == dict(faces=3, people=2, aligned=1.0, shared_with_s1=None)
    assert groups["S2"]["shared_with_s1"] == pytest.approx(1 / 3)  # face 10 is person 3
    assert groups["S2"]["aligned"] == pytest.approx(1 / 3)  # 20001, 20002 are face boxes
    assert groups["test"]["shared_with_s1"] == 0.0 and groups["test"]["people"] == 2


def gap(train, test):
    sigmas = np.array([0.1, 0.5])
    return pairs.PsnrGap(sigmas, np.array(train, float), np.array(test, float))


def test_scorecard_rows_name_their_models_and_skip_what_was_not_measured():
    p = config.get_profile("book")
    big = {role: of.largest_n(p, role) for role in of.ROLES}
    stats = {("identity", big["identity"]): stats_with_pairs([0.9, 0.95, 0.7]),
             ("shared", big["identity"]): stats_with_pairs([0.9, 0.95, 0.92]),
             ("fer2013", big["fer2013"]): stats_with_pairs([0.9, 0.91, 0.92])}
    gaps = {("fer2013", 10): gap([40, 40], [30, 32]), ("fer2013", big["fer2013"]): gap([30, 30],
                                                                                       [30, 29.8])}
    deterministic = {("fer2013", big["fer2013"]): stats_with_pairs([0.5, 0.6, 0.7])}
    rows = {r["id"]: r for r in of.scorecard_measurements(p, gaps, stats, deterministic)}
    assert set(rows) == {
        "Fig2.pair_similarity_identity_disjoint_largest_N",
        "beyond.low_agreement_share_identity_disjoint", "beyond.low_agreement_share_shared_people",
        "Fig9.gap_largest_N", "Fig9.gap_N10", "Fig10.pair_similarity_largest_N",
        "Fig13.pair_similarity_deterministic_fer2013"
    }
    assert rows["Fig9.gap_N10"]["measured"] == pytest.approx(9.0)
    assert rows["Fig9.gap_N10"]["checkpoints"] == ["fer2013-N10-S1"]
    assert rows["beyond.low_agreement_share_identity_disjoint"]["measured"] == pytest.approx(1 / 3)
    assert rows["beyond.low_agreement_share_shared_people"]["measured"] == 0.0
    assert rows["beyond.low_agreement_share_shared_people"]["checkpoints"] == [
        "celeba-N13000-S1", "celeba-N13000-S2"
    ]
    assert rows["Fig13.pair_similarity_deterministic_fer2013"]["measured"] == pytest.approx(0.6)
    assert rows["Fig13.pair_similarity_deterministic_fer2013"]["target"] is None
    assert rows["Fig10.pair_similarity_largest_N"]["target"] == ">= 0.85"


def test_a_face_sets_table_leaves_the_pair_columns_empty_without_a_pair():
    stats = stats_with_pairs([0.9, 0.8, 0.7])
    comp = SimpleNamespace(stats=stats)
    res = of.FaceSetResults("fer2013", {}, {},
                            {10: gap([40, 40], [30, 30]), 40: gap([30, 31], [30, 30])}, {40: comp})
    table = res.table("caption")
    assert table.cells[0] == ["10", "10.00", "-", "-", "-"]
    assert table.cells[1][:3] == ["40", "0.50", "0.800"]
