"""course_lib.rnn (notebook 14)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_feedback
from matplotlib.figure import Figure
from torch import nn

from course_lib import exercises
from course_lib import rnn as R

# --------------------------------------------------------------------------- weights of a cell


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_expected_parameter_count_and_table(cell):
    layer = R.CELLS[cell](7, 5)
    table = R.cell_weight_table(layer)
    assert sum(count for _, _, count in table) == R.expected_parameter_count(cell, 7, 5)
    shapes = dict((name, shape) for name, shape, _ in table)
    assert shapes["weight_ih_l0"] == (R.GATES[cell] * 5, 7)
    assert shapes["weight_hh_l0"] == (R.GATES[cell] * 5, 5)


def test_lstm_gates_are_views_in_ifgo_order():
    lstm = nn.LSTM(6, 4)
    gates = R.lstm_gates(lstm)
    assert list(gates) == ["input", "forget", "cell", "output"]
    assert torch.equal(gates["forget"]["w_ih"], lstm.weight_ih_l0.detach()[4:8])
    assert torch.equal(gates["output"]["b_hh"], lstm.bias_hh_l0.detach()[12:16])
    assert gates["cell"]["w_hh"].shape == (4, 4)


def test_lstm_step_matches_nn_lstm_only_in_pytorch_order():
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 3, batch_first=True)
    x, h0, c0 = torch.randn(2, 1, 5), torch.randn(1, 2, 3), torch.randn(1, 2, 3)
    _, (h, c) = lstm(x, (h0, c0))
    weights = (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
    h1, c1 = R.lstm_step(x[:, 0], h0[0], c0[0], *weights)
    assert torch.allclose(h1, h[0], atol=1e-6) and torch.allclose(c1, c[0], atol=1e-6)
    h2, _ = R.lstm_step(x[:, 0], h0[0], c0[0], *weights, order="ifog")
    assert (h2 - h[0]).abs().max() > 1e-2
    with pytest.raises(ValueError):
        R.lstm_step(x[:, 0], h0[0], c0[0], *weights, order="ifgx")


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_unroll_matches_nn_rnn(nonlinearity):
    torch.manual_seed(1)
    rnn = nn.RNN(4, 6, batch_first=True, nonlinearity=nonlinearity)
    x, h0 = torch.randn(3, 9, 4), torch.randn(3, 6)
    out, h_n = rnn(x, h0[None])
    out2, h_T = R.rnn_unroll(rnn, x, h0)
    assert torch.allclose(out, out2, atol=1e-6) and torch.allclose(h_n[0], h_T, atol=1e-6)


def test_per_step_gradients_sum_to_the_shared_gradient():
    torch.manual_seed(2)
    rnn = nn.RNN(4, 6, batch_first=True)
    parts, shared = R.per_step_gradients(rnn, torch.randn(5, 8, 4))
    assert len(parts) == 8
    assert torch.allclose(sum(parts), shared, atol=1e-6)
    assert parts[0].abs().max() == 0  # h_0 = 0: the first step contributes nothing
    assert all(p.abs().max() > 0 for p in parts[1:])
    assert rnn.weight_hh_l0.grad is None or rnn.weight_hh_l0.grad.abs().max() == 0


# --------------------------------------------------------------------------- orthogonal init


@pytest.mark.parametrize("shape", [(8, 8), (5, 7), (7, 5)])
def test_orthogonal_qr_equals_torch(shape):
    ours = R.orthogonal_qr(*shape, generator=torch.Generator().manual_seed(3))
    theirs = nn.init.orthogonal_(torch.empty(shape), generator=torch.Generator().manual_seed(3))
    assert torch.equal(ours, theirs)
    sv = torch.linalg.svdvals(ours)
    assert torch.allclose(sv, torch.ones_like(sv), atol=1e-5)
    assert torch.allclose(R.orthogonal_qr(4, gain=2.0).norm(dim=0), torch.full((4,), 2.0))


def test_orthogonal_recurrent_init_is_per_gate():
    lstm = R.orthogonal_recurrent_(nn.LSTM(3, 5, num_layers=2), gain=1.0)
    for name in ("weight_hh_l0", "weight_hh_l1"):
        for block in getattr(lstm, name).detach().chunk(4):
            assert torch.allclose(block @ block.T, torch.eye(5), atol=1e-5)
    assert not torch.allclose(lstm.weight_ih_l0 @ lstm.weight_ih_l0.T, torch.eye(20), atol=0.1)


def test_recurrent_matrix_and_jacobian():
    o = R.recurrence_jacobian(R.recurrent_matrix(32, "orthogonal"), 100)
    g = R.recurrence_jacobian(R.recurrent_matrix(32, "gaussian"), 100)
    assert o["norms"].shape == (101, 32)
    assert np.allclose(o["norms"], 1.0, atol=1e-9) and np.allclose(o["singular_values"], 1.0)
    assert g["singular_values"].max() > 10 and g["singular_values"].min() < 1e-8
    assert np.allclose(
        R.recurrence_jacobian(2 * torch.eye(3, dtype=torch.float64), 3)["norms"][-1], 8
    )
    with pytest.raises(ValueError):
        R.recurrent_matrix(4, "uniform")


@pytest.mark.parametrize("steps, gain", [(1, 0.5), (200, 1.5), (50, 1.0)])
def test_recurrence_figure_at_slider_extremes(steps, gain):
    fig = R.recurrence_figure(steps, gain)
    assert isinstance(fig, Figure)
    title = fig._suptitle.get_text()
    assert f"{steps} steps, gain {gain:.2f}" in title
    o = R.recurrence_jacobian(R.recurrent_matrix(64, "orthogonal", gain), steps)
    assert f"orthogonal {o['singular_values'].min():.3g}" in title


# --------------------------------------------------------------------------- gradients through time


def test_gradient_norm_explodes_only_above_gain_one():
    big = R.gradient_norm_through_time([5, 60], gain=2.0)
    one = R.gradient_norm_through_time([5, 60], gain=1.0)
    assert big[1] / big[0] > 100
    assert 0.3 < one[1] / one[0] < 3


@pytest.mark.parametrize("gain, max_len, clip", [(0.5, 10, 0.1), (3.0, 150, 10.0), (2.0, 60, 1.0)])
def test_gradient_through_time_figure_at_slider_extremes(gain, max_len, clip):
    fig = R.gradient_through_time_figure(gain, max_len, clip)
    title = fig.axes[0].get_title()
    norm = R.gradient_norm_through_time([max_len], gain=gain)[0]
    assert f"T={max_len}, gain {gain:.2f}: gradient norm {norm:.3g}" in title
    assert f"scales it by {min(1.0, clip / (norm + 1e-6)):.2g}" in title


# --------------------------------------------------------------------------- classifier


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_sentence_rnn_ignores_padding(cell, bidirectional):
    torch.manual_seed(5)
    model = R.SentenceRNN(20, cell, embed_dim=8, hidden_size=6, bidirectional=bidirectional)
    model.eval()
    x = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 0, 0, 0]])
    out = model(x)
    assert out.shape == (2, 2)
    assert torch.allclose(model(x[:, :3]), out, atol=1e-6)
    assert torch.allclose(model(x[1:, :2]), out[1:], atol=1e-6)  # alone, without padding
    assert model.head.in_features == (12 if bidirectional else 6)
    block = model.rnn.weight_hh_l0.detach()[:6]
    assert torch.allclose(block @ block.T, torch.eye(6), atol=1e-5)
    with pytest.raises(ValueError):
        R.SentenceRNN(20, "transformer")


def test_length_bucket_loader_groups_similar_lengths():
    lengths = torch.randint(1, 40, (500,))
    x = torch.zeros(500, 40, dtype=torch.long)
    for i, n in enumerate(lengths):
        x[i, :n] = 5
    y = np.arange(500) % 2
    loader = R.length_bucket_loader(x, y, batch_size=50, seed=0)
    seen, spreads = [], []
    for xb, yb in loader:
        n = (xb != 0).sum(1)
        spreads.append((n.max() - n.min()).item())
        seen += xb[:, 0].tolist()
        assert len(xb) == len(yb) <= 50
    assert len(seen) == 500 and len(loader) == 10
    assert np.mean(spreads) < 8  # a random batch of 50 would span almost all of 1..39
    first = [b[0].sum().item() for b in R.length_bucket_loader(x, y, 50, seed=0)]
    again = [b[0].sum().item() for b in R.length_bucket_loader(x, y, 50, seed=0)]
    assert first == again  # reproducible from the seed


def test_train_sentence_model_learns_a_toy_task(monkeypatch):
    words = ["good", "great", "fine", "bad", "awful", "dull"]
    rng = np.random.default_rng(0)

    def make(n):
        y = rng.integers(0, 2, n)
        x = [" ".join(rng.choice(words[3 * label : 3 * label + 3], 3)) + " film ." for label in y]
        return R.data.Dataset(x, y, ["neg", "pos"])

    splits = {"train": make(200), "val": make(60), "test": make(60)}
    res = R.train_sentence_model(
        "gru",
        splits,
        epochs=4,
        embed_dim=8,
        hidden_size=8,
        min_freq=1,
        batch_size=16,
        progress=False,
    )
    assert res["test_accuracy"] > 0.9 and 0 <= res["best_epoch"] < 4
    assert res["val_accuracy"] == max(res["history"].val_accuracy)
    assert res["n_parameters"] == sum(p.numel() for p in res["model"].parameters())
    assert len(res["vocab"]) == 2 + 8 and res["n_train"] == 200


def test_comparison_figure_title_has_best_accuracy():
    from course_lib.training import History

    results = {
        c: {"history": History(val_accuracy=[0.6, a]), "test_accuracy": a}
        for c, a in (("rnn", 0.7), ("gru", 0.78))
    }
    fig = R.comparison_figure(results)
    assert "best: GRU 78.0%" in fig._suptitle.get_text()
    assert len(fig.axes[1].patches) == 2 + len(R.PUBLISHED_MR)
    fig = R.comparison_figure(results, baseline=0.75)
    assert len(fig.axes[1].patches) == 3 + len(R.PUBLISHED_MR)


def test_tfidf_baseline_on_a_toy_split():
    rng = np.random.default_rng(0)

    def make(n):
        y = rng.integers(0, 2, n)
        x = [
            ("a truly great film" if label else "a truly awful film") + f" w{i}"
            for i, label in enumerate(y)
        ]
        return R.data.Dataset(x, y, ["neg", "pos"])

    splits = {"train": make(60), "test": make(40)}
    assert R.tfidf_baseline(splits) == 1.0
    assert R.tfidf_baseline(splits, n_train=10) == 1.0


# --------------------------------------------------------------------------- exercises


def test_lstm_step_wrong_answers():
    def order_ifog(x, h, c, w_ih, w_hh, b_ih, b_hh):
        return R.lstm_step(x, h, c, w_ih, w_hh, b_ih, b_hh, order="ifog")

    def one_bias(x, h, c, w_ih, w_hh, b_ih, b_hh):
        return R.lstm_step(x, h, c, w_ih, w_hh, b_ih, torch.zeros_like(b_hh))

    def old_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
        h_new, c_new = R.lstm_step(x, h, c, w_ih, w_hh, b_ih, b_hh)
        o = torch.sigmoid((x @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, -1)[3])
        return o * torch.tanh(c), c_new

    assert_feedback("14.1", order_ifog, "gate order 'ifog'")
    assert_feedback("14.1", one_bias, "both biases")
    assert_feedback("14.1", old_cell, "*new* cell state")
    assert_feedback("14.1", lambda *a: a[1], "pair")


def test_rnn_wrong_answers():
    def no_memory(x, w_ih, w_hh, b_ih, b_hh):
        return torch.tanh(x @ w_ih.T + b_ih + b_hh)

    def last_only(x, w_ih, w_hh, b_ih, b_hh):
        return exercises.get("14.2").solution(x, w_ih, w_hh, b_ih, b_hh)[-1]

    def one_bias(x, w_ih, w_hh, b_ih, b_hh):
        return exercises.get("14.2").solution(x, w_ih, w_hh, b_ih, torch.zeros_like(b_hh))

    assert_feedback("14.2", no_memory, "previous hidden state")
    assert_feedback("14.2", last_only, "every step")
    assert_feedback("14.2", one_bias, "two biases")
    assert_feedback("14.2", lambda x, *w: x @ w[0], "raised")


def test_count_wrong_answers():
    def one_bias(cell, i, h):
        return R.GATES[cell] * (h * i + h * h + h)

    def one_gate(cell, i, h):
        return h * i + h * h + 2 * h

    def no_recurrent(cell, i, h):
        return R.GATES[cell] * (h * i + 2 * h)

    assert_feedback("14.3", one_bias, "two bias vectors")
    assert_feedback("14.3", one_gate, "counted one gate")
    assert_feedback("14.3", no_recurrent, "W_hh")
    assert_feedback("14.3", lambda c, i, h: 7, "expected")
    assert_feedback("14.3", lambda c, i, h: [1, 2], "single number")
