"""Names: a character-level generator of first names (makemore), trained on 32,032 real names,
with an MLP over the previous few characters or a GRU/LSTM over the whole name, then sampled.

    python examples/names.py [--model mlp|gru|lstm] [--steps 10000] [--data names.txt]

The data is one lower-case name per line (../shared/data/names.txt in this project, or any such
file given with --data). Written with PyTorch's names only: changing the imports to torch runs
the same program under PyTorch.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import bprop as bp
import bprop.nn as nn
import bprop.nn.functional as F

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "names.txt"
END = "."  # index 0: the token that starts and ends every name


def read_names(path: Path) -> list[str]:
    if not path.is_file():
        sys.exit(f"names.py: no data file at {path}; pass a file of names, one a line, with --data")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        sys.exit(f"names.py: {path} holds no names")
    return names


class Vocabulary:
    """The characters of the names, with END as index 0."""

    def __init__(self, names: list[str]) -> None:
        self.chars = [END] + sorted(set("".join(names)) - {END})
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, name: str) -> list[int]:
        return [self.index[c] for c in name]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)


class MLP(nn.Module):
    """Bengio et al. 2003: embed the previous block_size characters, one tanh layer, logits."""

    def __init__(self, vocab_size: int, block_size: int, embed: int, hidden: int) -> None:
        super().__init__()
        self.block_size = block_size
        self.embedding = nn.Embedding(vocab_size, embed)
        self.hidden = nn.Linear(block_size * embed, hidden)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, context: bp.Tensor) -> bp.Tensor:
        """(batch, block_size) character ids -> (batch, vocab_size) logits of the next one."""
        e = self.embedding(context)
        logits: bp.Tensor = self.out(bp.tanh(self.hidden(e.view(e.shape[0], -1))))
        return logits


class Recurrent(nn.Module):
    """Embed each character, run a GRU or LSTM over the name, read logits off every step."""

    def __init__(self, kind: str, vocab_size: int, embed: int, hidden: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed)
        cell = nn.GRU if kind == "gru" else nn.LSTM
        self.rnn = cell(embed, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, x: bp.Tensor, state: object = None) -> tuple[bp.Tensor, object]:
        """(batch, time) ids -> (batch, time, vocab_size) logits and the recurrent state."""
        h, state = self.rnn(self.embedding(x), state)
        return self.out(h), state


def mlp_examples(
    names: list[str], vocab: Vocabulary, block_size: int
) -> tuple[bp.Tensor, bp.Tensor]:
    """Every (previous block_size characters, next character) pair, END-padded on the left."""
    contexts, targets = [], []
    for name in names:
        context = [0] * block_size
        for i in vocab.encode(name) + [0]:
            contexts.append(context)
            targets.append(i)
            context = context[1:] + [i]
    return bp.tensor(contexts), bp.tensor(targets)


def sequence_examples(names: list[str], vocab: Vocabulary) -> tuple[bp.Tensor, bp.Tensor]:
    """Inputs END + name and targets name + END, padded to the longest name; the padding of the
    targets is -100, which cross_entropy ignores."""
    width = max(len(n) for n in names) + 1
    inputs, targets = [], []
    for name in names:
        ids = vocab.encode(name)
        inputs.append([0] + ids + [0] * (width - 1 - len(ids)))
        targets.append(ids + [0] + [-100] * (width - 1 - len(ids)))
    return bp.tensor(inputs), bp.tensor(targets)


def loss_of(model: nn.Module, x: bp.Tensor, y: bp.Tensor) -> bp.Tensor:
    if isinstance(model, MLP):
        return F.cross_entropy(model(x), y)
    logits, _ = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def sample(model: nn.Module, vocab: Vocabulary, count: int, max_length: int) -> list[str]:
    """Draw names one character at a time from the model's softmax, until END."""
    model.eval()
    names = []
    with bp.no_grad():
        for _ in range(count):
            ids: list[int] = []
            if isinstance(model, MLP):
                context = [0] * model.block_size
                while len(ids) < max_length:
                    probs = F.softmax(model(bp.tensor([context])), dim=-1)
                    i = int(bp.multinomial(probs, num_samples=1).item())
                    if i == 0:
                        break
                    ids.append(i)
                    context = context[1:] + [i]
            else:
                state: object = None
                i = 0
                while len(ids) < max_length:
                    logits, state = model(bp.tensor([[i]]), state)
                    probs = F.softmax(logits[:, -1], dim=-1)
                    i = int(bp.multinomial(probs, num_samples=1).item())
                    if i == 0:
                        break
                    ids.append(i)
            names.append(vocab.decode(ids))
    model.train()
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="names, one a line")
    parser.add_argument("--model", choices=["mlp", "gru", "lstm"], default="mlp")
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--block-size", type=int, default=3, help="MLP: characters of context")
    parser.add_argument("--embed", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=None, help="default 200 (MLP), 128 (RNN)")
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    parser.add_argument("--lr", type=float, default=None, help="default 1e-2 (Adam), 0.1 (SGD)")
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    names = read_names(args.data)
    random.Random(args.seed).shuffle(names)
    vocab = Vocabulary(names)
    n_val = max(1, len(names) // 10)
    train_names, val_names = names[n_val:], names[:n_val]
    print(f"{len(names)} names ({len(train_names)} train, {len(val_names)} val), "
          f"{len(vocab)} characters, longest {max(len(n) for n in names)}")  # fmt: skip

    bp.manual_seed(args.seed)
    model: nn.Module
    if args.model == "mlp":
        model = MLP(len(vocab), args.block_size, args.embed, args.hidden or 200)
        x_train, y_train = mlp_examples(train_names, vocab, args.block_size)
        x_val, y_val = mlp_examples(val_names, vocab, args.block_size)
    else:
        model = Recurrent(args.model, len(vocab), args.embed, args.hidden or 128)
        x_train, y_train = sequence_examples(train_names, vocab)
        x_val, y_val = sequence_examples(val_names, vocab)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"model {args.model}: {parameters} parameters, {x_train.shape[0]} training examples")

    optimizer = (
        bp.optim.Adam(model.parameters(), lr=args.lr or 1e-2)
        if args.optimizer == "adam"
        else bp.optim.SGD(model.parameters(), lr=args.lr or 0.1, momentum=0.9)
    )
    scheduler = bp.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.steps)

    start = time.perf_counter()
    train_loss = float("nan")
    for step in range(1, args.steps + 1):
        ix = bp.randint(0, x_train.shape[0], (args.batch_size,))
        loss = loss_of(model, x_train[ix], y_train[ix])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        train_loss = loss.item() if step == 1 else 0.95 * train_loss + 0.05 * loss.item()
        if step % args.eval_every == 0 or step == args.steps:
            model.eval()
            with bp.no_grad():
                val_loss = loss_of(model, x_val, y_val).item()
            model.train()
            print(f"step {step:6d}  train loss {train_loss:.4f}  val loss {val_loss:.4f}"
                  f"  ({time.perf_counter() - start:.1f} s)", flush=True)  # fmt: skip
    elapsed = time.perf_counter() - start
    print(f"{args.steps} steps in {elapsed:.1f} s ({1e3 * elapsed / args.steps:.2f} ms/step)")

    bp.manual_seed(args.seed)
    longest = max(len(n) for n in names) + 5
    print("samples:", ", ".join(sample(model, vocab, args.samples, longest)))


if __name__ == "__main__":
    main()
