import pytest
import torch

from conftest import tiny_mae_kwargs
from pretrain import MaskedAutoencoder, build_mae, fit_pca, sample_noise


def test_encoder_sees_only_the_visible_patches():
    model = MaskedAutoencoder(**tiny_mae_kwargs())
    seen = []
    model.blocks[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
    model(torch.randn(2, 3, 32, 32), mask_ratio=0.75)
    assert seen == [1 + 4]  # cls + 25% of 16 patches


def test_noise_decides_which_patches_are_kept():
    model = MaskedAutoencoder(**tiny_mae_kwargs())
    noise = torch.rand(3, 16)
    _, pred, mask = model(torch.randn(3, 3, 32, 32), mask_ratio=0.75, noise=noise)
    kept = torch.argsort(noise, dim=1)[:, :4]
    expected = torch.ones(3, 16)
    expected.scatter_(1, kept, 0.0)
    torch.testing.assert_close(mask, expected)
    assert pred.shape == (3, 16, 8 * 8 * 3)


def test_loss_ignores_visible_patches_unless_asked():
    imgs = torch.randn(2, 3, 32, 32)
    for loss_on, changes in (("masked", False), ("all", True)):
        model = MaskedAutoencoder(**tiny_mae_kwargs(loss_on=loss_on))
        _, pred, mask = model(imgs)
        shifted = pred + (1 - mask)[..., None] * 5.0  # change only the visible patches
        moved = not torch.isclose(model.forward_loss(imgs, pred, mask), model.forward_loss(imgs, shifted, mask))
        assert moved == changes


def test_norm_pixel_target_is_per_patch_normalised():
    model = MaskedAutoencoder(**tiny_mae_kwargs(norm_pix_loss=True))
    target = model.targets(torch.rand(2, 3, 32, 32) * 7 + 3)
    torch.testing.assert_close(target.mean(-1), torch.zeros(2, 16), atol=1e-5, rtol=0)
    torch.testing.assert_close(target.var(-1), torch.ones(2, 16), atol=1e-3, rtol=0)


def test_pca_target():
    model = MaskedAutoencoder(**tiny_mae_kwargs(target="pca", pca_dim=12))
    assert model.decoder_pred.out_features == 12
    with pytest.raises(RuntimeError, match="fit_pca"):
        model(torch.randn(1, 3, 32, 32))
    base = torch.randn(8, 3, 1, 1)  # images made of a few directions: PCA explains a lot
    imgs = base * torch.randn(1, 3, 32, 32) + 0.01 * torch.randn(8, 3, 32, 32)
    explained = fit_pca(model, [imgs[:4], imgs[4:]])
    assert 0.5 < explained <= 1.0
    coeffs = model.targets(imgs)
    assert coeffs.shape == (8, 16, 12)
    loss, _, _ = model(imgs)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("strategy", ["random", "block", "grid"])
def test_mask_sampling_masks_exactly_the_ratio(strategy):
    g = torch.Generator().manual_seed(0)
    noise = sample_noise(strategy, (14, 14), 0.75, batch=4, generator=g)
    len_keep = int(196 * 0.25)
    kept = torch.zeros(4, 196)
    kept.scatter_(1, torch.argsort(noise, 1)[:, :len_keep], 1.0)
    assert (kept.sum(1) == len_keep).all()
    grid = kept.reshape(4, 14, 14)
    if strategy == "grid":
        expected = torch.zeros(14, 14)
        expected[::2, ::2] = 1
        assert (grid == expected).all()
    if strategy == "block":  # masked patches come in blocks: most masked patches have a masked neighbour
        masked = 1 - grid
        neighbours = masked[:, 1:, :] * masked[:, :-1, :]
        assert neighbours.sum() > 0.6 * masked[:, 1:, :].sum()


def test_encoder_with_mask_tokens_sees_every_patch():
    model = MaskedAutoencoder(**tiny_mae_kwargs(encoder_mask_token=True))
    assert "encoder_mask_token" in model.state_dict() and "mask_token" not in model.state_dict()
    seen = []
    model.blocks[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
    loss, pred, mask = model(torch.randn(2, 3, 32, 32))
    assert seen == [17] and mask.sum() == 24
    loss.backward()
    assert model.encoder_mask_token.grad.abs().sum() > 0


def test_rectangular_images_and_build_mae_names():
    model = MaskedAutoencoder(**tiny_mae_kwargs())
    loss, pred, mask = model(torch.randn(1, 3, 32, 48))
    assert pred.shape == (1, 24, 192) and mask.sum() == 24 - int(24 * 0.25)
    with torch.device("meta"):
        huge = build_mae("mae_vit_huge_patch14")
    assert huge.patch_size == 14 and huge.embed_dim == 1280 and len(huge.decoder_blocks) == 8
    assert huge.decoder_embed.out_features == 512
    with pytest.raises(ValueError, match="unknown MAE model"):
        build_mae("mae_vit_giant_patch14")


def test_unpatchify_inverts_patchify():
    model = MaskedAutoencoder(**tiny_mae_kwargs())
    imgs = torch.randn(2, 3, 32, 48)
    torch.testing.assert_close(model.unpatchify(model.patchify(imgs), (4, 6)), imgs)


def test_augmentation_switch_covers_table_1e_and_names_bad_values():
    from PIL import Image

    from pretrain.data import AUGMENTATIONS, train_transform

    img = Image.fromarray((torch.rand(80, 100, 3) * 255).byte().numpy())
    outputs = {}
    for name in AUGMENTATIONS:
        transform = train_transform(32, name)
        torch.manual_seed(0)
        first = transform(img)
        torch.manual_seed(1)
        outputs[name] = (first, transform(img))
        assert first.shape == (3, 32, 32)
    same, other = outputs["none"]
    assert torch.equal(same, other)  # no randomness without augmentation
    for name in ("crop_fixed", "crop_rand", "crop_rand_jitter"):
        assert not torch.equal(*outputs[name]), name
    with pytest.raises(ValueError, match="augmentation must be one of"):
        train_transform(32, "mixup")


@pytest.mark.parametrize("target", ["pixel", "norm_pixel"])
def test_reconstruction_figure_of_a_masked_patch_uses_nothing_of_that_patch(target):
    from pretrain.visualize import reconstruct

    model = MaskedAutoencoder(**tiny_mae_kwargs(target=target))
    imgs = torch.randn(2, 3, 32, 32)
    columns = dict(reconstruct(model, imgs, seed=3))
    # masked patches are blank in the masked input, visible ones equal the original
    hidden = (columns["masked 75%"] != columns["original"]).any(dim=1, keepdim=True).expand_as(imgs)
    assert hidden.float().mean() == 0.75
    # other content, mean and contrast in every hidden patch; the same noise hides the same patches
    changed = torch.where(hidden, torch.randn_like(imgs) * 3 + 2, imgs)
    again = dict(reconstruct(model, changed, seed=3))
    assert list(again) == list(columns)
    shown = next(name for name in columns if name != "original" and not name.startswith("masked"))
    torch.testing.assert_close(again[shown], columns[shown], rtol=0, atol=0)
    assert not torch.equal(again["original"], columns["original"])


def test_norm_pixel_figure_labels_the_prediction_normalised_and_shows_its_target():
    from pretrain.visualize import reconstruction_figure

    def titles(target):
        fig = reconstruction_figure(MaskedAutoencoder(**tiny_mae_kwargs(target=target)), torch.randn(1, 3, 32, 32))
        return [ax.get_title() for ax in fig.axes]

    assert titles("pixel") == ["masked 75%", "reconstruction", "original"]
    norm = titles("norm_pixel")
    assert "reconstruction" not in norm and len(norm) == 4
    assert norm[1].startswith("prediction") and norm[2].startswith("target (original)")
    assert all("per-patch normalised" in title for title in norm[1:3])
