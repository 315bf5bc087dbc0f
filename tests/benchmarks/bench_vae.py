"""One training epoch of the 784-400-20 VAE (Adam, batch 64) on 60,000 binarized 28x28 images:
flowedu's on-device batching (``data.batches``) vs a torchvision-style DataLoader with ``ToTensor``.

Data: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` files when present, else synthetic binary
images of the same size. Both runs train the same architecture from the same initial weights on the same
(statically binarized) images; only the feeding differs. A second line times the feeding alone. Not a test:
timings depend on the machine (and on its load: run it on an idle machine).
"""

import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from common import best_of, report
from flowedu import config, data
from flowedu.vae import make_vae

N, BATCH = 60_000, 64


def load_binary_images() -> tuple[torch.Tensor, str]:
    try:
        x, _ = data.load_images("fashion-mnist", "train", binarize="static", device="cpu")
        return x[:N], "fashion-mnist"
    except data.DatasetUnavailableError:
        g = torch.Generator().manual_seed(0)
        return (torch.rand(N, 1, 28, 28, generator=g) < 0.3).float(), "synthetic"


class PILDataset(Dataset):
    """What a tutorial would write: uint8 images, one PIL image and one ToTensor call per sample."""

    def __init__(self, x: torch.Tensor):
        from torchvision.transforms import ToTensor

        self.images = (x[:, 0] * 255).to(torch.uint8).numpy()
        self.to_tensor = ToTensor()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.to_tensor(Image.fromarray(self.images[i], mode="L")), 0


def epoch(model, optimizer, batches) -> float:
    start = time.perf_counter()
    for xb in batches:
        loss = -model.elbo(xb).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def fresh_model():
    config.seed_everything(0)
    model = make_vae((1, 28, 28), 20, "bernoulli", (400,))
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


x, source = load_binary_images()
model, optimizer = fresh_model()
epoch(model, optimizer, data.batches(x[:BATCH * 20], BATCH))  # warm-up: allocator, kernels
model, optimizer = fresh_model()
t_batches = epoch(model, optimizer, data.batches(x, BATCH, generator=torch.Generator().manual_seed(0)))

loader = DataLoader(PILDataset(x), batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(0))
model, optimizer = fresh_model()
t_loader = epoch(model, optimizer, (xb for xb, _ in loader))
assert np.isfinite(t_batches) and np.isfinite(t_loader)
report("vae.epoch_batches_vs_dataloader", data=source, n=len(x), architecture="784-400-20", batch_size=BATCH,
       batches_s=round(t_batches, 2), dataloader_s=round(t_loader, 2), speedup=round(t_loader / t_batches, 2))

# The feeding alone (the same passes without the model), to separate input cost from compute.
feed_batches = best_of(lambda: [xb.sum() for xb in data.batches(x, BATCH, generator=torch.Generator().manual_seed(0))],
                       repeats=1)
feed_loader = best_of(lambda: [xb.sum() for xb, _ in loader], repeats=1)
report("vae.feeding_only_batches_vs_dataloader", data=source, n=len(x), batch_size=BATCH,
       batches_s=round(feed_batches, 3), dataloader_s=round(feed_loader, 2),
       speedup=round(feed_loader / feed_batches, 1))
