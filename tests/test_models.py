import pytest
import torch

from diffgen_utils.models import BFCNN, UNet, count_parameters, denoise

PAPER_COUNTS = {1: 366_080, 2: 1_825_024, 3: 7_659_264, 4: 30_993_152}


@pytest.mark.parametrize("blocks", [1, 2, 3, 4])
def test_unet_parameter_counts_match_the_paper(blocks):
    assert count_parameters(UNet(blocks=blocks, width=64)) == PAPER_COUNTS[blocks]


def test_bfcnn_parameter_count_matches_the_paper():
    assert count_parameters(BFCNN(width=64)) == 702_784


def small_models():
    torch.manual_seed(0)
    models = [UNet(blocks=1, width=8), UNet(blocks=2, width=8), BFCNN(width=8, depth=5)]
    y = torch.rand(8, 1, 16, 16)
    for m in models:  # give the BN layers non-trivial running statistics
        m.train()
        m(y)
        m.eval()
    return models


@pytest.mark.parametrize("model", small_models(), ids=["unet1", "unet2", "bfcnn"])
def test_denoiser_is_positively_homogeneous(model):
    y = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    for a in (0.1, 3.0, 17.0):
        torch.testing.assert_close(denoise(model, a * y), a * denoise(model, y), rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize("model", small_models(), ids=["unet1", "unet2", "bfcnn"])
def test_denoiser_equals_its_jacobian_times_input(model):
    y = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(2)).double()
    model = model.double()
    f = lambda v: denoise(model, v)
    out, jy = torch.func.jvp(f, (y, ), (y, ))
    assert ((out - jy).norm() / out.norm()).item() < 1e-4


def test_a_bias_would_break_homogeneity():
    """The homogeneity check above can fail: the same net with one bias does not pass it."""
    model = small_models()[0]
    model.encoder[0][0].bias = torch.nn.Parameter(torch.full((8, ), 0.1))
    y = torch.rand(1, 1, 16, 16)
    assert not torch.allclose(denoise(model, 3 * y), 3 * denoise(model, y), rtol=1e-4)


def test_unet_rejects_indivisible_sizes():
    with pytest.raises(ValueError, match="divisible by 4"):
        UNet(blocks=2, width=4)(torch.rand(1, 1, 18, 18))


@pytest.mark.parametrize("arch, blocks, side", [("unet", 1, 18), ("unet", 2, 44), ("unet", 3, 92),
                                                ("unet", 4, 188), ("bfcnn", 1, 43)])
def test_receptive_fields_match_table_1(arch, blocks, side):
    from diffgen_utils.config import TrainConfig
    from diffgen_utils.models import receptive_field

    assert receptive_field(TrainConfig("x", 20, 1, arch=arch, blocks=blocks, width=4)) == side
