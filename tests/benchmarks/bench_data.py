"""One pass over 60,000 flattened 28x28 images in batches of 64: flowedu.data.batches vs a DataLoader."""

import torch
from torch.utils.data import DataLoader, TensorDataset

from common import best_of, report
from flowedu import data

N, D, BATCH = 60_000, 784, 64
x = torch.rand(N, D)
y = torch.randint(0, 10, (N,))


def with_batches():
    for xb, _ in data.batches((x, y), BATCH, generator=torch.Generator().manual_seed(0)):
        xb.sum()


def with_dataloader():
    for xb, _ in DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True):
        xb.sum()


t_batches = best_of(with_batches, repeats=3)
t_loader = best_of(with_dataloader, repeats=3)
report("data.batches_vs_dataloader", n=N, dim=D, batch_size=BATCH, batches_s=round(t_batches, 4),
       dataloader_s=round(t_loader, 4), speedup=round(t_loader / t_batches, 1))
