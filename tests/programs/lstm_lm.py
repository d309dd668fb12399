"""A character LSTM language model in the shape of PyTorch's word_language_model example.

Embedding -> 2-layer LSTM -> Linear decoder, the text batchified into streams, truncated
backpropagation through time with the hidden state detached between chunks
(`repackage_hidden`), `clip_grad_norm_`, and the example's plain SGD update written as
`p.data.add_(p.grad, alpha=-lr)`, with the learning rate annealed when validation stalls.
"""

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tiny_shakespeare.txt"


class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.0):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        self.nhid = nhid
        self.nlayers = nlayers

    def init_weights(self, rng):
        initrange = 0.1
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.startswith("decoder.bias"):
                    p.data.zero_()
                else:
                    u = rng.uniform(-initrange, initrange, size=tuple(p.shape))
                    p.data.copy_(torch.from_numpy(u.astype(np.float32)))

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (
            weight.new_zeros(self.nlayers, bsz, self.nhid),
            weight.new_zeros(self.nlayers, bsz, self.nhid),
        )


def batchify(data, bsz, device):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous().to(device)


def get_batch(source, i, bptt):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i : i + seq_len]
    target = source[i + 1 : i + 1 + seq_len].reshape(-1)
    return data, target


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def main():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    text = DATA.read_text()[:6000]
    vocab = sorted(set(text))
    ids = torch.tensor([vocab.index(c) for c in text], dtype=torch.int64)
    split = int(0.85 * len(ids))
    train_data = batchify(ids[:split], 8, device)
    val_data = batchify(ids[split:], 4, device)

    model = RNNModel(len(vocab), 16, 32, 2).to(device)
    model.init_weights(np.random.default_rng(3))
    criterion = nn.NLLLoss()
    lr, bptt, clip = 2.0, 16, 0.25

    def evaluate(data_source, bsz):
        model.eval()
        total_loss = 0.0
        hidden = model.init_hidden(bsz)
        with torch.no_grad():
            for i in range(0, data_source.size(0) - 1, bptt):
                data, targets = get_batch(data_source, i, bptt)
                output, hidden = model(data, hidden)
                hidden = repackage_hidden(hidden)
                total_loss += len(data) * criterion(output, targets).item()
        return total_loss / (len(data_source) - 1)

    history = []
    best_val_loss = None
    for epoch in range(1, 3):
        model.train()
        hidden = model.init_hidden(8)
        for batch, i in enumerate(range(0, min(train_data.size(0) - 1, 8 * bptt), bptt)):
            data, targets = get_batch(train_data, i, bptt)
            model.zero_grad()
            hidden = repackage_hidden(hidden)
            output, hidden = model(data, hidden)
            loss = criterion(output, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-lr)
            history.append(loss.item())
            print(f"| epoch {epoch:3d} | batch {batch:3d} | lr {lr:02.2f} | loss {loss:5.2f}")
        val_loss = evaluate(val_data, 4)
        history.append(val_loss)
        print(
            f"| end of epoch {epoch:3d} | valid loss {val_loss:5.2f} | "
            f"valid ppl {math.exp(val_loss):8.2f}"
        )
        if not best_val_loss or val_loss < best_val_loss:
            best_val_loss = val_loss
        else:
            lr /= 4.0
    print("LOSSES", json.dumps(history))


if __name__ == "__main__":
    main()
