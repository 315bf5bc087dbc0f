"""Wall time for a VAE to reach a fixed test ELBO on 28x28 images: flowedu's loop vs a DataLoader loop.

The question users ask is "how long until my model is this good", not "how fast is one epoch". Both
runs train the same 784-400-20 Bernoulli VAE from the same initial weights (seed 0) with Adam (1e-3,
batch 128) on Fashion-MNIST with dynamic binarization (a fresh Bernoulli draw of every image at every
use), and evaluate the ELBO of 2,000 statically binarized test images every EVAL_EVERY steps until it
reaches TARGET nats (or CAP_S seconds pass). Only the feeding differs:

* flowedu: the images live on the device as one tensor; ``data.batches(..., binarize=True)`` indexes
  them and draws the binary pixels per batch;
* DataLoader: what a tutorial writes -- uint8 images, ``ToTensor`` on a PIL image per sample, then
  ``torch.bernoulli`` per sample, batched by the default collate (``num_workers=0``).

The batch order differs between the two (different random streams), so the step counts can differ by a
few evaluation intervals; the wall time per step is the figure to compare. Needs Debian's
dataset-fashion-mnist (or torchvision's download). Not a test: timings depend on the machine.
"""

import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from common import report
from flowedu import config, data
from flowedu.vae import evaluate_elbo, make_vae

BATCH, LR, EVAL_EVERY, CAP_S = 128, 1e-3, 200, 900.0
TARGET = -265.0  # nats per image on the 2,000 test images; reached after about 400 steps (under one epoch)


class TutorialDataset(Dataset):
    """uint8 images, one PIL image, one ToTensor call and one Bernoulli draw per sample."""

    def __init__(self, x: torch.Tensor):
        from torchvision.transforms import ToTensor

        self.images = (x[:, 0] * 255).round().to(torch.uint8).numpy()
        self.to_tensor = ToTensor()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return torch.bernoulli(self.to_tensor(Image.fromarray(self.images[i], mode="L")))


def run(batches_per_epoch, model, x_test) -> tuple[int | None, float | None, float]:
    """Train until the test ELBO >= TARGET; returns (steps, seconds, final test ELBO)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    step, start = 0, time.perf_counter()
    while True:
        for xb in batches_per_epoch():
            loss = -model.elbo(xb).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step % EVAL_EVERY == 0:
                elbo = evaluate_elbo(model, x_test)
                model.train()
                if elbo >= TARGET:
                    return step, time.perf_counter() - start, elbo
                if time.perf_counter() - start > CAP_S:
                    return None, None, elbo


def fresh_model():
    config.seed_everything(0)
    return make_vae((1, 28, 28), 20, "bernoulli", (400,))


x_train, _ = data.load_images("fashion-mnist", "train", device="cpu")
x_test, _ = data.load_images("fashion-mnist", "test", binarize="static", device="cpu")
x_test = x_test[:2000]

g = torch.Generator().manual_seed(0)
steps_a, seconds_a, elbo_a = run(lambda: data.batches(x_train, BATCH, generator=g, binarize=True), fresh_model(),
                                 x_test)
loader = DataLoader(TutorialDataset(x_train), batch_size=BATCH, shuffle=True,
                    generator=torch.Generator().manual_seed(0))
steps_b, seconds_b, elbo_b = run(lambda: iter(loader), fresh_model(), x_test)
report("vae.time_to_test_elbo", data="fashion-mnist", architecture="784-400-20", batch_size=BATCH,
       target_elbo=TARGET, flowedu_steps=steps_a, flowedu_s=None if seconds_a is None else round(seconds_a, 1),
       dataloader_steps=steps_b, dataloader_s=None if seconds_b is None else round(seconds_b, 1),
       flowedu_ms_per_step=None if steps_a is None else round(1000 * seconds_a / steps_a, 2),
       dataloader_ms_per_step=None if steps_b is None else round(1000 * seconds_b / steps_b, 2),
       speedup=None if None in (seconds_a, seconds_b) else round(seconds_b / seconds_a, 2))
