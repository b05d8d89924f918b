"""course_lib.training: loaders, fit, evaluate, predict, weight snapshots."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from course_lib import training


def _blobs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 2)) + 3.0 * y[:, None]
    return x.astype(np.float32), y


def test_to_tensor_dtypes():
    assert training.to_tensor(np.zeros(3)).dtype == torch.float32
    assert training.to_tensor(np.zeros(3, dtype=np.int32)).dtype == torch.int64
    assert training.to_tensor(np.zeros(3, dtype=np.uint8)).dtype == torch.uint8
    t = torch.ones(2)
    assert (
        training.to_tensor(t) is t and training.to_tensor(t, torch.float64).dtype == torch.float64
    )


def test_make_loader_is_reproducible_and_checks_lengths():
    x, y = _blobs()
    first = [yb for _, yb in training.make_loader(x, y, batch_size=50, seed=1)]
    again = [yb for _, yb in training.make_loader(x, y, batch_size=50, seed=1)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    with pytest.raises(ValueError, match="must match"):
        training.make_loader(x, y[:5])


def test_fit_learns_and_records_history():
    x, y = _blobs()
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    snaps = training.WeightSnapshots()
    history = training.fit(
        model,
        (x, y),
        epochs=5,
        lr=0.05,
        batch_size=16,
        val=(x, y),
        callbacks=[snaps],
        progress=False,
        device="cpu",
    )
    assert history.epochs == 5 and len(history.val_accuracy) == 5
    assert history.loss[-1] < history.loss[0] and history.val_accuracy[-1] > 0.9
    assert len(snaps.snapshots) == 6  # initial state + one per epoch
    assert not torch.equal(snaps.snapshots[0]["weight"], snaps.snapshots[-1]["weight"])
    assert torch.equal(snaps.snapshots[-1]["weight"], model.weight.detach())
    assert set(history.as_dict()) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.seconds > 0


def test_fit_regression_with_custom_optimizer_and_clipping():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -1.0, 2.0], dtype=np.float32))[:, None]
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    history = training.fit(
        model,
        (x, y),
        epochs=30,
        optimizer=opt,
        loss_fn=nn.MSELoss(),
        grad_clip=1.0,
        batch_size=10,
        progress=False,
        device="cpu",
    )
    assert history.accuracy == [] and history.loss[-1] < 1e-3
    assert training.evaluate(model, (x, y), nn.MSELoss()).keys() == {"loss"}


def test_grad_clip_bounds_every_step():
    """With clipping, one SGD step moves the weights by at most lr * grad_clip."""
    torch.manual_seed(0)
    x = torch.randn(64, 5) * 100  # huge inputs: huge gradients
    y = torch.randn(64, 1) * 100
    moves = {}
    for clip in (None, 0.5):
        model = nn.Linear(5, 1)
        before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        training.fit(model, (x, y), epochs=1, optimizer=opt, loss_fn=nn.MSELoss(),
                     batch_size=64, grad_clip=clip, progress=False, device="cpu")  # fmt: skip
        after = torch.cat([p.detach().flatten() for p in model.parameters()])
        moves[clip] = (after - before).norm().item()
    assert moves[0.5] == pytest.approx(0.1 * 0.5, rel=1e-3)  # clipped to norm 0.5 exactly
    assert moves[None] > 100 * moves[0.5]


def test_fit_applies_transform_and_scheduler():
    x, y = _blobs(40)
    seen = []

    def transform(xb):
        seen.append(len(xb))
        return xb

    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    training.fit(
        model,
        (x, y),
        epochs=2,
        optimizer=opt,
        scheduler=sched,
        transform=transform,
        batch_size=16,
        progress=False,
        device="cpu",
    )
    assert sum(seen) == 80 and opt.param_groups[0]["lr"] == pytest.approx(0.025)


def test_fit_time_limit_stops_after_the_epoch_that_passes_it():
    x, y = _blobs(40)
    stopped = training.fit(nn.Linear(2, 2), (x, y), epochs=4, time_limit=0.0, progress=False)
    assert stopped.epochs == 1 and len(stopped.loss) == 1
    full = training.fit(nn.Linear(2, 2), (x, y), epochs=4, time_limit=1e9, progress=False)
    assert full.epochs == 4


def test_fit_rejects_bad_arguments():
    with pytest.raises(ValueError):
        training.fit(nn.Linear(2, 2), _blobs(), epochs=-1, progress=False)
    with pytest.raises(TypeError, match="DataLoader"):
        training.fit(nn.Linear(2, 2), [1, 2, 3], epochs=1, progress=False)


def test_evaluate_and_predict_keep_the_mode():
    x, y = _blobs(30)
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    model.train()
    out = training.predict(model, x, batch_size=7)
    assert out.shape == (30, 2) and model.training
    assert torch.allclose(out, training.predict(model, x))  # dropout off: deterministic
    metrics = training.evaluate(model, (x, y))
    assert 0 <= metrics["accuracy"] <= 1 and model.training
    with pytest.raises(ValueError, match="no data"):
        training.evaluate(model, (x[:0], y[:0]))


def test_snapshots_of_selected_parameters_and_clone():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    snaps = training.WeightSnapshots(names=["1.weight"])
    snaps.capture(model)
    assert list(snaps.snapshots[0]) == ["1.weight"]
    copy = training.clone(model)
    assert copy is not model and torch.equal(copy[0].weight, model[0].weight)
    assert copy[0].weight.data_ptr() != model[0].weight.data_ptr()


def test_make_loader_covers_every_example_once_per_epoch():
    x, y = torch.arange(10).view(10, 1).float(), torch.arange(10)
    batches = list(training.make_loader(x, y, batch_size=4, seed=0))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    seen = torch.cat([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    again = torch.cat([b[1] for b in training.make_loader(x, y, batch_size=4, seed=0)])
    assert torch.equal(seen, again)
    ordered = torch.cat([b[1] for b in training.make_loader(x, y, batch_size=3, shuffle=False)])
    assert ordered.tolist() == list(range(10))


def test_to_numpy():
    t = torch.ones(2, requires_grad=True)
    assert isinstance(training.to_numpy(t), np.ndarray) and training.to_numpy([1, 2]).tolist() == [
        1,
        2,
    ]


def test_num_threads_sets_and_restores():
    before = torch.get_num_threads()
    with training.num_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), training.num_threads(1):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with training.num_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="at least 1"), training.num_threads(0):
        pass


def test_accuracy_counts_right_answers():
    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    assert training.accuracy(model, (x, torch.tensor([0, 1, 0, 0]))) == 0.75
    assert training.accuracy(model, (x, torch.tensor([1, 0, 1, 0]))) == 0.0
