"""Digits in PyTorch with your own Mish and label-smoothed cross-entropy, derived by symnet.

    symnet generate examples/my_declarations.py --target torch -o out
    python examples/training/torch_digits.py out [EPOCHS]                       # one process
    torchrun --nproc_per_node=2 examples/training/torch_digits.py out [EPOCHS]  # DDP on 2 processes
"""
import os
import sys

import numpy as np
import torch
from sklearn.datasets import load_digits

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "out")  # the folder generate wrote
from torch_modules.activations.mish import mish  # noqa: E402  (symnet's derived backward)
from torch_modules.losses.smoothed_ce import smoothed_ce  # noqa: E402

epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))  # torchrun's
if world > 1:  # on GPUs: "nccl", and the model and each batch .to(f"cuda:{rank}")
    torch.distributed.init_process_group("gloo")

digits = load_digits()  # symnet's split (symnet.runtime.data.digits): pixels / 16, 1348 train
x, y = torch.tensor(digits.data / 16, dtype=torch.float32), torch.tensor(digits.target)
order = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
train, test = order[:1348], order[1348:]


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden, self.out = torch.nn.Linear(64, 100), torch.nn.Linear(100, 10)

    def forward(self, x):
        return self.out(mish(self.hidden(x)))


torch.manual_seed(0)
model = Net() if world == 1 else torch.nn.parallel.DistributedDataParallel(Net())
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(epochs):
    shuffled = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(epoch))]
    losses = []
    mine = shuffled[rank:len(shuffled) // world * world:world]  # this rank's share, equal sizes
    for batch in mine.split(32 // world):  # a batch of 32 over all the ranks
        loss = smoothed_ce(model(x[batch]), torch.nn.functional.one_hot(y[batch], 10))
        optimizer.zero_grad()
        loss.backward()  # symnet's backward; DDP averages the gradients over the ranks
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        accuracy = (model(x[test]).argmax(1) == y[test]).float().mean().item()
    if rank == 0:
        print(f"epoch {epoch + 1}  loss {np.mean(losses):.4f}  test accuracy {accuracy:.4f}")
if world > 1:  # stop gloo's threads before the interpreter exits (else it may abort at exit)
    torch.distributed.destroy_process_group()
