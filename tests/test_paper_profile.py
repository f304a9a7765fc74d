"""The paper profile runs on a GPU, which CI never has: check here that its models build and
take one training step on CPU, so that the GPU path cannot silently rot."""
import torch

from diffgen_utils import config, families, zoo
from diffgen_utils.models import build_model, count_parameters
from diffgen_utils.train import loss_fn


def test_every_paper_model_builds_and_takes_one_step():
    profile = config.get_profile("paper")
    configs = {
        zoo.spec(name, profile, with_data=False).config
        for name in families.model_names(profile)
    }
    architectures = {(c.arch, c.blocks, c.width, c.size) for c in configs}
    # the paper's 80x80 network, and the 40x40 one of Fig 15 (Table 1)
    assert architectures == {("unet", 3, 64, 80), ("unet", 2, 64, 40)}
    for cfg in configs:
        assert cfg.batch == 512 and cfg.sigma_sampling == "uniform_squared"
    parameters = {80: 7_659_264, 40: 1_825_024}
    for size in parameters:
        cfg = next(c for c in configs if c.size == size)
        torch.manual_seed(0)
        model = build_model(cfg)
        assert count_parameters(model) == parameters[size]
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        x = torch.rand(2, 1, cfg.size, cfg.size)
        loss = loss_fn(cfg, model, x, torch.Generator().manual_seed(0))
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss)
