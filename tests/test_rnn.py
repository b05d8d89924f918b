"""course_lib.rnn (notebook 14)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_feedback
from torch import nn

from course_lib import exercises, rnn

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


# --------------------------------------------------------------------------- weights of a cell


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_expected_parameter_count_and_table(cell):
    layer = rnn.CELLS[cell](7, 5)
    table = rnn.cell_weight_table(layer)
    assert sum(count for _, _, count in table) == rnn.expected_parameter_count(cell, 7, 5)
    shapes = dict((name, shape) for name, shape, _ in table)
    assert shapes["weight_ih_l0"] == (rnn.GATES[cell] * 5, 7)
    assert shapes["weight_hh_l0"] == (rnn.GATES[cell] * 5, 5)


def test_lstm_gates_are_views_in_ifgo_order():
    lstm = nn.LSTM(6, 4)
    gates = rnn.lstm_gates(lstm)
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
    h1, c1 = rnn.lstm_step(x[:, 0], h0[0], c0[0], *weights)
    assert torch.allclose(h1, h[0], atol=1e-6) and torch.allclose(c1, c[0], atol=1e-6)
    h2, _ = rnn.lstm_step(x[:, 0], h0[0], c0[0], *weights, order="ifog")
    assert (h2 - h[0]).abs().max() > 1e-2
    with pytest.raises(ValueError):
        rnn.lstm_step(x[:, 0], h0[0], c0[0], *weights, order="ifgx")


def test_gru_step_matches_nn_gru_only_with_reset_after_the_product():
    torch.manual_seed(0)
    gru = nn.GRU(5, 3, batch_first=True)
    x, h0 = torch.randn(4, 1, 5), torch.randn(1, 4, 3)
    h1 = gru(x, h0)[1][0]
    weights = (gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)
    assert torch.allclose(rnn.gru_step(x[:, 0], h0[0], *weights), h1, atol=1e-6)
    cho = rnn.gru_step(x[:, 0], h0[0], *weights, reset_after=False)
    assert (cho - h1).abs().max() > 1e-2
    with torch.no_grad():  # with the reset gate fully open (r = 1) both orders agree
        gru.bias_ih_l0[:3] = 50.0
    h1 = gru(x, h0)[1][0]
    for reset_after in (True, False):
        assert torch.allclose(
            rnn.gru_step(x[:, 0], h0[0], *weights, reset_after=reset_after), h1, atol=1e-5
        )


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_fold_biases_is_exact_except_inside_the_gru_reset(cell):
    torch.manual_seed(1)
    layer = rnn.CELLS[cell](4, 3, batch_first=True)
    x = torch.randn(2, 6, 4)
    folded = rnn.fold_biases(layer)
    assert torch.count_nonzero(folded.bias_hh_l0) == 0
    assert torch.allclose(folded.bias_ih_l0, layer.bias_ih_l0 + layer.bias_hh_l0)
    assert layer.bias_hh_l0.abs().min() > 0  # the original is untouched
    diff = (layer(x)[0] - folded(x)[0]).abs().max()
    if cell == "gru":
        assert diff > 1e-2
        assert torch.allclose(layer(x)[0], rnn.fold_biases(layer, blocks=[0, 1])(x)[0], atol=1e-6)
        assert (layer(x)[0] - rnn.fold_biases(layer, blocks=[2])(x)[0]).abs().max() > 1e-2
    else:
        assert diff < 1e-6


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_unroll_matches_nn_rnn(nonlinearity):
    torch.manual_seed(1)
    layer = nn.RNN(4, 6, batch_first=True, nonlinearity=nonlinearity)
    x, h0 = torch.randn(3, 9, 4), torch.randn(3, 6)
    out, h_n = layer(x, h0[None])
    out2, h_T = rnn.rnn_unroll(layer, x, h0)
    assert torch.allclose(out, out2, atol=1e-6) and torch.allclose(h_n[0], h_T, atol=1e-6)


def test_per_step_gradients_sum_to_the_shared_gradient():
    torch.manual_seed(2)
    layer = nn.RNN(4, 6, batch_first=True)
    parts, shared = rnn.per_step_gradients(layer, torch.randn(5, 8, 4))
    assert len(parts) == 8
    assert torch.allclose(sum(parts), shared, atol=1e-6)
    assert parts[0].abs().max() == 0  # h_0 = 0: the first step contributes nothing
    assert all(p.abs().max() > 0 for p in parts[1:])
    assert layer.weight_hh_l0.grad is None or layer.weight_hh_l0.grad.abs().max() == 0


# --------------------------------------------------------------------------- orthogonal init


@pytest.mark.parametrize("shape", [(8, 8), (5, 7), (7, 5)])
def test_orthogonal_qr_equals_torch(shape):
    ours = rnn.orthogonal_qr(*shape, generator=torch.Generator().manual_seed(3))
    theirs = nn.init.orthogonal_(torch.empty(shape), generator=torch.Generator().manual_seed(3))
    assert torch.equal(ours, theirs)
    sv = torch.linalg.svdvals(ours)
    assert torch.allclose(sv, torch.ones_like(sv), atol=1e-5)
    assert torch.allclose(rnn.orthogonal_qr(4, gain=2.0).norm(dim=0), torch.full((4,), 2.0))


def test_orthogonal_recurrent_init_is_per_gate():
    lstm = rnn.orthogonal_recurrent_(nn.LSTM(3, 5, num_layers=2), gain=1.0)
    for name in ("weight_hh_l0", "weight_hh_l1"):
        for block in getattr(lstm, name).detach().chunk(4):
            assert torch.allclose(block @ block.T, torch.eye(5), atol=1e-5)
    assert not torch.allclose(lstm.weight_ih_l0 @ lstm.weight_ih_l0.T, torch.eye(20), atol=0.1)


def test_recurrent_matrix_and_jacobian():
    o = rnn.recurrence_jacobian(rnn.recurrent_matrix(32, "orthogonal"), 100)
    g = rnn.recurrence_jacobian(rnn.recurrent_matrix(32, "gaussian"), 100)
    assert o["norms"].shape == (101, 32)
    assert np.allclose(o["norms"], 1.0, atol=1e-9) and np.allclose(o["singular_values"], 1.0)
    assert g["singular_values"].max() > 10 and g["singular_values"].min() < 1e-8
    assert np.allclose(
        rnn.recurrence_jacobian(2 * torch.eye(3, dtype=torch.float64), 3)["norms"][-1], 8
    )
    with pytest.raises(ValueError):
        rnn.recurrent_matrix(4, "uniform")


def test_recurrence_figure_at_slider_extremes():
    """Orthogonal: all singular values of W^T equal gain^T; Gaussian: spread over decades."""
    for steps, gain in ((1, 0.5), (200, 1.5), (50, 1.0)):
        fig = rnn.recurrence_figure(steps, gain)
        assert f"{steps} steps, gain {gain:.2f}" in fig.get_suptitle()
        orth, gauss = (line.get_ydata() for line in fig.axes[1].get_lines())
        np.testing.assert_allclose(orth, gain**steps, rtol=1e-6)
        if steps >= 50:
            assert gauss.max() / gauss.min() > 1e6
        norms = fig.axes[0].get_lines()[0].get_ydata()  # one orthogonal start: norm gain^t
        np.testing.assert_allclose(norms, gain ** np.arange(steps + 1), rtol=1e-6)


def test_forget_bias_opens_the_forget_gate():
    torch.manual_seed(0)
    lstm = nn.LSTM(32, 16, num_layers=2, bidirectional=True)
    default = rnn.forget_gate_memory(lstm, steps=20)
    rnn.forget_bias_(lstm, 1.0)
    for name, p in lstm.named_parameters():
        if name.startswith("bias_ih"):
            assert torch.all(p[16:32] == 1.0) and not torch.all(p[:16] == 1.0)
        if name.startswith("bias_hh"):
            assert torch.all(p[16:32] == 0.0)
    opened = rnn.forget_gate_memory(lstm, steps=20)
    assert abs(default["forget"] - 0.5) < 0.03 and 0.69 < opened["forget"] < 0.76
    assert opened["kept"] > 100 * default["kept"]


# --------------------------------------------------------------------------- gradients through time


def test_gradient_norm_explodes_only_above_gain_one():
    big = rnn.gradient_norm_through_time([5, 60], gain=2.0, seed=0)
    one = rnn.gradient_norm_through_time([5, 60], gain=1.0, seed=0)
    assert big[1] / big[0] > 100
    assert 0.3 < one[1] / one[0] < 3


def test_gradient_norm_of_a_prefix_equals_a_shorter_sequence():
    """One forward pass serves every length: length T is the first T steps of the longest."""
    lengths = [3, 7]
    norms = rnn.gradient_norm_through_time(lengths, gain=1.5, seed=4)
    torch.manual_seed(4)
    layer = nn.RNN(16, 64, batch_first=True)
    with torch.no_grad():
        nn.init.orthogonal_(layer.weight_hh_l0, gain=1.5)
    x = torch.randn(8, 7, 16)
    layer(x[:, :3])[1].pow(2).mean().backward()
    assert norms[0] == pytest.approx(layer.weight_hh_l0.grad.norm().item(), rel=1e-5)


@pytest.mark.parametrize("gain, max_len, clip", [(0.5, 10, 0.1), (3.0, 150, 10.0)])
def test_gradient_through_time_figure_at_slider_extremes(gain, max_len, clip):
    """Below gain 1 the gradient shrinks with length, at gain 3 it explodes far past the clip."""
    fig = rnn.gradient_through_time_figure(gain, max_len, clip)
    ax = fig.axes[0]
    curve, reference = (line.get_ydata() for line in ax.get_lines()[:2])
    assert len(curve) == len(reference) >= 9
    assert ax.get_lines()[2].get_ydata()[0] == clip
    if gain < 1:  # only the last few steps contribute: bounded, below the gain-1 reference
        assert curve.max() < 2 * curve[0] and np.all(curve < reference)
    else:
        assert curve[-1] > 1e6 * curve[0] and curve[-1] > 1e6 * clip
        scale = float(ax.get_title().split("scales it by ")[1])
        assert scale == pytest.approx(clip / curve[-1], rel=0.05)


def test_exploded_rnn_holds_an_exploded_gradient():
    def norm(layer):
        return torch.cat([p.grad.flatten() for p in layer.parameters()]).norm().item()

    assert norm(rnn.exploded_rnn(gain=2.0, seed=0)) > 1e3 * norm(rnn.exploded_rnn(gain=1.0, seed=0))


def test_clipping_is_what_lets_the_relu_rnn_train():
    free, clipped = rnn.clipping_run(None, seed=0), rnn.clipping_run(1.0, seed=0)
    assert not np.isfinite(free["val_loss"]) or free["val_loss"] > free["baseline"]
    assert clipped["val_loss"] < 0.35 * clipped["baseline"]
    assert len(clipped["loss"]) == len(clipped["norm"]) == 80
    assert np.nanmax(free["norm"]) > 1e3 * np.median(clipped["norm"])
    assert 4 < clipped["baseline"] < 6  # the variance of a sum of 5 standard normals


# --------------------------------------------------------------------------- classifier


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_sentence_rnn_ignores_padding(cell, bidirectional):
    torch.manual_seed(5)
    model = rnn.SentenceRNN(20, cell, embed_dim=8, hidden_size=6, bidirectional=bidirectional)
    model.eval()
    x = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 0, 0, 0]])
    out = model(x)
    assert out.shape == (2, 2)
    assert torch.allclose(model(x[:, :3]), out, atol=1e-6)
    assert torch.allclose(model(x[1:, :2]), out[1:], atol=1e-6)  # alone, without padding
    assert model.head.in_features == (12 if bidirectional else 6)
    # read as tokens, the padding changes the output; without padding nothing changes
    assert (rnn.logits_reading_padding(model, x) - out).abs().max() > 1e-4
    full = torch.tensor([[3, 4, 5], [6, 7, 8]])
    assert torch.allclose(rnn.logits_reading_padding(model, full), model(full), atol=1e-6)
    block = model.rnn.weight_hh_l0.detach()[:6]
    assert torch.allclose(block @ block.T, torch.eye(6), atol=1e-5)
    if cell == "lstm":
        forget = (model.rnn.bias_ih_l0 + model.rnn.bias_hh_l0)[6:12]
        assert torch.allclose(forget, torch.ones(6))
    with pytest.raises(ValueError):
        rnn.SentenceRNN(20, "transformer")


def _toy_splits(seed=0):
    words = ["good", "great", "fine", "bad", "awful", "dull"]
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, 2, n)
        x = [" ".join(rng.choice(words[3 * label : 3 * label + 3], 3)) + " film ." for label in y]
        return rnn.data.Dataset(x, y, ["neg", "pos"])

    return {"train": make(200), "val": make(60), "test": make(60)}


def test_train_sentence_model_learns_a_toy_task():
    res = rnn.train_sentence_model(
        "gru", _toy_splits(), epochs=4, size=8, lr=0.03, seed=0, progress=False
    )
    assert res["test_accuracy"] > 0.9 and 0 <= res["best_epoch"] < 4
    assert res["val_accuracy"] == max(res["history"].val_accuracy)
    assert res["n_parameters"] == sum(p.numel() for p in res["model"].parameters())
    assert len(res["vocab"]) == 2 + 8 and res["n_train"] == 200
    assert len(res["grad_norms"]) == 4 * 4  # one norm per step: 4 batches of 64, 4 epochs


def test_train_sentence_model_clips_before_every_step(monkeypatch):
    calls, clip = [], rnn.clip_grad_norm

    def spy(params, max_norm):
        calls.append(max_norm)
        return clip(params, max_norm)

    monkeypatch.setattr(rnn, "clip_grad_norm", spy)
    res = rnn.train_sentence_model(
        "rnn", _toy_splits(1), epochs=2, size=8, max_norm=0.5, seed=0, progress=False
    )
    assert calls == [0.5] * 8 and len(res["grad_norms"]) == 8
    assert np.all(res["grad_norms"] > 0)


def test_comparison_figure_title_has_best_accuracy():
    from course_lib.training import History

    results = {
        c: {"history": History(val_accuracy=[0.6, a]), "test_accuracy": a}
        for c, a in (("rnn", 0.7), ("gru", 0.78))
    }
    fig = rnn.comparison_figure(results)
    assert "best: GRU 78.0%" in fig.get_suptitle()
    assert len(fig.axes[1].patches) == 2 + len(rnn.PUBLISHED_MR)
    fig = rnn.comparison_figure(results, baseline=0.75)
    assert len(fig.axes[1].patches) == 3 + len(rnn.PUBLISHED_MR)


# --------------------------------------------------------------------------- exercises


def test_lstm_step_wrong_answers():
    def order_ifog(x, h, c, w_ih, w_hh, b_ih, b_hh):
        return rnn.lstm_step(x, h, c, w_ih, w_hh, b_ih, b_hh, order="ifog")

    def one_bias(x, h, c, w_ih, w_hh, b_ih, b_hh):
        return rnn.lstm_step(x, h, c, w_ih, w_hh, b_ih, torch.zeros_like(b_hh))

    def old_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
        h_new, c_new = rnn.lstm_step(x, h, c, w_ih, w_hh, b_ih, b_hh)
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
        return rnn.GATES[cell] * (h * i + h * h + h)

    def one_gate(cell, i, h):
        return h * i + h * h + 2 * h

    def no_recurrent(cell, i, h):
        return rnn.GATES[cell] * (h * i + 2 * h)

    assert_feedback("14.3", one_bias, "two bias vectors")
    assert_feedback("14.3", one_gate, "counted one gate")
    assert_feedback("14.3", no_recurrent, "W_hh")
    assert_feedback("14.3", lambda c, i, h: 7, "expected")
    assert_feedback("14.3", lambda c, i, h: [1, 2], "single number")
