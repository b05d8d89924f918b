"""course_lib.vision: the CIFAR-10 pipeline shared by notebooks 05 and 13."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib import vision


def _images(n=6, seed=0, size=32):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def _two_colour_task(n=64):
    """Half the images pure red, half pure blue (plus noise): trivially learnable."""
    g = torch.Generator().manual_seed(1)
    y = torch.arange(n) % 2
    x = torch.randint(0, 40, (n, 3, 32, 32), generator=g)
    x[y == 0, 0] += 200
    x[y == 1, 2] += 200
    return x.to(torch.uint8), y


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


# --------------------------------------------------------------------------- data


def test_load_data_shapes_and_subsets(real_data):
    tr, te = vision.load_data(n_train=200, n_test=100)
    assert tr.x.shape == (200, 3, 32, 32) and tr.x.dtype == np.uint8
    assert te.x.shape == (100, 3, 32, 32)
    assert sorted(np.unique(tr.y)) == list(range(10))  # stratified: every class present
    assert tr.classes[0] == "airplane" and len(tr.classes) == 10


def test_channel_stats_matches_numpy():
    x = _images(10).numpy()
    x[:, 1] //= 3
    mean, std = vision.channel_stats(x)
    ref = x.astype(np.float64) / 255
    np.testing.assert_allclose(mean.numpy(), ref.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(std.numpy(), ref.std(axis=(0, 2, 3)), rtol=1e-6)
    assert std[1] < std[0] / 2
    with pytest.raises(ValueError, match="shape"):
        vision.channel_stats(x[0])
    m2, s2 = vision.channel_stats(x, chunk=3)  # chunked sums give the same result
    torch.testing.assert_close(m2, mean)
    torch.testing.assert_close(s2, std)


def test_normalize_standardises_and_uses_buffers():
    x = _images(20)
    mean, std = vision.channel_stats(x)
    norm = vision.Normalize(mean, std)
    out = norm(x)
    assert out.dtype == torch.float32
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        out.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4, rtol=0
    )
    assert list(norm.parameters()) == []
    assert set(norm.state_dict()) == {"mean", "std"}
    with pytest.raises(ValueError, match="positive"):
        vision.Normalize((0.5, 0.5, 0.5), (0.2, 0.0, 0.2))


def test_shift_crop_equals_reflect_pad_and_crop():
    x = _images(5).float()
    dy = torch.tensor([-4, 0, 3, 4, -1])
    dx = torch.tensor([2, -4, 0, 4, 1])
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    ref = torch.stack(
        [padded[i, :, 4 + dy[i] : 36 + dy[i], 4 + dx[i] : 36 + dx[i]] for i in range(5)]
    )
    assert torch.equal(vision.shift_crop(x, dy, dx), ref)
    u8 = _images(2)
    assert torch.equal(vision.shift_crop(u8, [0, 0], [0, 0]), u8)
    assert vision.shift_crop(u8, [1, 2], [3, 4]).dtype == torch.uint8


def test_augment_identity_flip_and_reproducibility():
    x = _images(16)
    assert torch.equal(vision.Augment(padding=0, flip=0.0)(x), x)
    assert torch.equal(vision.Augment(padding=0, flip=1.0)(x), x.flip(3))
    a, b = vision.Augment(seed=3)(x), vision.Augment(seed=3)(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, vision.Augment(seed=4)(x))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert "padding=4" in repr(vision.Augment())
    with pytest.raises(ValueError):
        vision.Augment(padding=-1)
    with pytest.raises(ValueError):
        vision.Augment(flip=1.5)


# --------------------------------------------------------------------------- the model


def test_small_resnet_shapes_and_parameter_count():
    model = vision.SmallResNet(16)
    out = model(_images(2))
    assert out.shape == (2, 10)
    assert model.features(_images(2)).shape == (2, 128)
    assert sum(p.numel() for p in model.parameters()) == 412_954
    assert model.stem.conv.weight.shape == (16, 3, 3, 3)
    assert model.stem.conv.bias is None
    assert vision.SmallResNet(8, stem_kernel=5).stem.conv.weight.shape == (8, 3, 5, 5)
    assert model.layer3.conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_conv_bn_block_halves_the_image_when_pooling():
    block = vision.ConvBN(3, 8, pool=True)
    assert block(torch.randn(2, 3, 16, 16)).shape == (2, 8, 8, 8)
    assert vision.ConvBN(3, 8)(torch.randn(2, 3, 16, 16)).shape == (2, 8, 16, 16)
    assert [name for name, _ in block.named_children()] == ["conv", "bn", "relu", "pool"]
    assert (block(torch.randn(2, 3, 16, 16)) >= 0).all()  # ends with a ReLU


def test_residual_adds_its_input():
    block = vision.Residual(4).eval()
    for p in block.b.bn.parameters():
        torch.nn.init.zeros_(p)  # f(x) = relu(0) = 0, so the block is the identity
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(block(x), x)


# --------------------------------------------------------------------------- training and evaluation


def test_one_cycle_schedule_rises_then_falls_to_zero():
    model = torch.nn.Linear(2, 1)
    opt, _ = vision.one_cycle_sgd(model, total_steps=10, lr=1.0, warmup=0.2)
    assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9
    rates = []
    for _ in range(10):
        rates.append(opt.param_groups[0]["lr"])
        model(torch.ones(1, 2)).sum().backward()
        opt.step()
    assert rates[:3] == pytest.approx([0.5, 1.0, 1.0])
    assert rates[-1] == pytest.approx(1 / 8) and opt.param_groups[0]["lr"] == 0.0
    assert all(a >= b for a, b in zip(rates[1:], rates[2:], strict=False))
    with pytest.raises(ValueError):
        vision.one_cycle_sgd(model, total_steps=0)


def test_train_learns_an_easy_task_and_records_snapshots():
    x, y = _two_colour_task()
    torch.manual_seed(0)
    model = vision.SmallResNet(4, *vision.channel_stats(x))
    run = vision.train(model, (x, y), epochs=3, batch_size=16, snapshots=True, progress=False)
    assert run.history.epochs == 3 and len(run.snapshots) == 4
    assert run.images_seen == 3 * len(y) and run.images_per_second > 0
    assert run.cpu_seconds > 0
    assert vision.accuracy(model, (x, y)) == 1.0
    assert not torch.equal(run.snapshots[0]["fc.weight"], run.snapshots[-1]["fc.weight"])


def test_predict_proba_averages_the_mirror_image():
    torch.manual_seed(0)
    model = vision.SmallResNet(4).eval()
    x = _images(4)
    plain = vision.predict_proba(model, x, tta=False)
    both = vision.predict_proba(model, x, tta=True)
    mirrored = vision.predict_proba(model, x.flip(3), tta=False)
    torch.testing.assert_close(both, (plain + mirrored) / 2)
    torch.testing.assert_close(both.sum(1), torch.ones(4))


def _left_right_task(n=64):
    """Class 0: bright left half; class 1: bright right half. A mirror image swaps the classes."""
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 60, (n, 3, 32, 32), generator=g)
    y = torch.arange(n) % 2
    x[y == 0, :, :, :16] += 180
    x[y == 1, :, :, 16:] += 180
    return x.to(torch.uint8), y


def test_train_augments_every_training_batch_with_flips():
    """Flips make the left/right task contradictory: it is learnt only without them."""
    x, y = _left_right_task()
    accuracies = {}
    for flip in (0.0, 0.5):
        torch.manual_seed(0)
        model = vision.SmallResNet(4, *vision.channel_stats(x))
        vision.train(
            model, (x, y), epochs=4, batch_size=16, padding=0, flip=flip, progress=False, seed=0
        )
        accuracies[flip] = vision.accuracy(model, (x, y), tta=False)
    assert accuracies[0.0] == 1.0
    assert accuracies[0.5] < 0.8, accuracies


def test_train_smooths_the_labels():
    """With label smoothing eps the loss cannot fall below the entropy of the smoothed target."""
    x, y = _two_colour_task()
    target = torch.full((10,), 0.02)
    target[0] = 0.82  # eps = 0.2 over 10 classes
    floor = -(target * target.log()).sum().item()  # 0.867 nats
    losses = {}
    for eps in (0.0, 0.2):
        torch.manual_seed(0)
        model = vision.SmallResNet(4, *vision.channel_stats(x))
        run = vision.train(
            model, (x, y), epochs=6, batch_size=16, label_smoothing=eps, progress=False
        )
        losses[eps] = run.history.loss
    assert losses[0.0][-1] < 0.05, losses  # the easy task is learnt: hard targets reach ~0
    assert min(losses[0.2]) >= floor - 1e-4 and losses[0.2][-1] < floor + 0.15, losses


def test_residual_without_skip_is_its_branch():
    torch.manual_seed(0)
    with_skip = vision.Residual(4).eval()
    branch = vision.Residual(4, skip=False).eval()
    branch.load_state_dict(with_skip.state_dict())
    x = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(with_skip(x), x + branch(x))
    assert not vision.SmallResNet(4, residual=False).res3.skip and vision.SmallResNet(4).res1.skip
