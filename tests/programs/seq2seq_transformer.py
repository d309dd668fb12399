"""Sequence reversal with the full nn.Transformer (encoder and decoder), as translation code does.

Source and target token embeddings scaled by sqrt(d_model) plus a sinusoidal positional encoding
buffer, `nn.Transformer(batch_first=True)` with a boolean causal `tgt_mask` from `torch.triu`
and key padding masks for the padded sequences, `nn.CrossEntropyLoss(ignore_index=PAD,
label_smoothing=0.1)`, Adam with the "Attention is all you need" warm-up schedule in a
`LambdaLR`, and greedy decoding token by token in eval mode.
"""

import json
import math

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

PAD, BOS, EOS, N_SYMBOLS, MAX_LEN = 0, 1, 2, 10, 7
VOCAB = 3 + N_SYMBOLS


def make_pairs(rng, n):
    src = np.full((n, MAX_LEN), PAD, dtype=np.int64)
    tgt = np.full((n, MAX_LEN + 2), PAD, dtype=np.int64)
    for i in range(n):
        length = rng.integers(2, MAX_LEN + 1)
        seq = rng.integers(3, VOCAB, size=length)
        src[i, :length] = seq
        tgt[i, : length + 2] = np.concatenate([[BOS], seq[::-1], [EOS]])
    return torch.from_numpy(src), torch.from_numpy(tgt)


def causal_mask(size, device):
    """True above the diagonal: position i may not look at j > i (bool, like the padding masks)."""
    return torch.triu(torch.ones(size, size, dtype=torch.bool, device=device), diagonal=1)


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, max_len=64):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(1, max_len, d_model)
        pe[0, :, 0::2] = torch.sin(position * div_term)
        pe[0, :, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x):
        return x + self.pe[:, : x.size(1)]


class Seq2Seq(nn.Module):
    def __init__(self, d_model=32):
        super().__init__()
        self.d_model = d_model
        self.src_emb = nn.Embedding(VOCAB, d_model, padding_idx=PAD)
        self.tgt_emb = nn.Embedding(VOCAB, d_model, padding_idx=PAD)
        self.pos = PositionalEncoding(d_model)
        self.transformer = nn.Transformer(
            d_model=d_model,
            nhead=4,
            num_encoder_layers=1,
            num_decoder_layers=1,
            dim_feedforward=64,
            dropout=0.0,
            batch_first=True,
        )
        self.generator = nn.Linear(d_model, VOCAB)

    def forward(self, src, tgt):
        tgt_mask = causal_mask(tgt.size(1), src.device)
        src_pad, tgt_pad = src == PAD, tgt == PAD
        out = self.transformer(
            self.pos(self.src_emb(src) * math.sqrt(self.d_model)),
            self.pos(self.tgt_emb(tgt) * math.sqrt(self.d_model)),
            tgt_mask=tgt_mask,
            src_key_padding_mask=src_pad,
            tgt_key_padding_mask=tgt_pad,
            memory_key_padding_mask=src_pad,
        )
        return self.generator(out)

    @torch.no_grad()
    def greedy_decode(self, src, max_len):
        src_pad = src == PAD
        memory = self.transformer.encoder(
            self.pos(self.src_emb(src) * math.sqrt(self.d_model)), src_key_padding_mask=src_pad
        )
        ys = torch.full((src.size(0), 1), BOS, dtype=torch.long, device=src.device)
        for _ in range(max_len - 1):
            tgt_mask = causal_mask(ys.size(1), src.device)
            out = self.transformer.decoder(
                self.pos(self.tgt_emb(ys) * math.sqrt(self.d_model)),
                memory,
                tgt_mask=tgt_mask,
                memory_key_padding_mask=src_pad,
            )
            next_word = self.generator(out[:, -1]).argmax(dim=-1, keepdim=True)
            ys = torch.cat([ys, next_word], dim=1)
        return ys


def main():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rng = np.random.default_rng(31)
    loader = DataLoader(TensorDataset(*make_pairs(rng, 256)), batch_size=64)
    test_src, test_tgt = make_pairs(rng, 32)

    model = Seq2Seq()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                continue
            if p.dim() > 1:
                bound = math.sqrt(6.0 / (p.size(0) + p.size(1)))  # xavier_uniform_
                p.copy_(torch.tensor(rng.uniform(-bound, bound, size=tuple(p.shape))))
            else:
                p.zero_()
    model.to(device)
    criterion = nn.CrossEntropyLoss(ignore_index=PAD, label_smoothing=0.1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    warmup = 8
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: 0.3 * 32**-0.5 * min((step + 1) ** -0.5, (step + 1) * warmup**-1.5),
    )

    history = []
    for epoch in range(6):
        model.train()
        for src, tgt in loader:
            src, tgt = src.to(device), tgt.to(device)
            tgt_input, tgt_out = tgt[:, :-1], tgt[:, 1:]
            logits = model(src, tgt_input)
            loss = criterion(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            history.append(loss.item())
        print(f"epoch {epoch}: loss {loss.item():.4f}, lr {scheduler.get_last_lr()[0]:.5f}")

    model.eval()
    with torch.no_grad():
        logits = model(test_src.to(device), test_tgt[:, :-1].to(device))
        test_loss = criterion(logits.reshape(-1, VOCAB), test_tgt[:, 1:].reshape(-1).to(device))
        decoded = model.greedy_decode(test_src[:4].to(device), MAX_LEN + 2)
    history.append(test_loss.item())
    for s, d in zip(test_src[:4].tolist(), decoded.tolist()):
        print([t for t in s if t != PAD], "->", d[1:])
    print(f"test loss {test_loss:.4f}")
    print("LOSSES", json.dumps(history))


if __name__ == "__main__":
    main()
