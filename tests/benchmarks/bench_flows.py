"""RealNVP on two moons, flowedu vs normflows with the same architecture (4 affine couplings with
alternating masks, MLPs with two hidden layers of 64; flowedu bounds the log-scale with tanh,
normflows does not), batch 256, Adam 1e-3: training throughput (steps/s) and the wall time each
needs to reach a test NLL <= 1.9 nats (capped at CAP_S seconds)."""

import time

import normflows as nf
import torch

from common import report
from flowedu import data, flows

torch.manual_seed(0)
BATCH, HIDDEN, STEPS, LR, CAP_S = 256, 64, 300, 1e-3, 120.0
x_train = data.toy2d("moons", 20_000, seed=0, device="cpu")
x_test = data.toy2d("moons", 10_000, seed=1, device="cpu")


def flowedu_model():
    return flows.NormalizingFlow(flows.StandardNormal(2), flows.realnvp(2, 4, HIDDEN, n_hidden=2))


def normflows_model():
    layers = []
    for i in range(4):
        mask = torch.tensor([1.0, 0.0]) if i % 2 == 0 else torch.tensor([0.0, 1.0])
        s = nf.nets.MLP([2, HIDDEN, HIDDEN, 2], init_zeros=True)
        t = nf.nets.MLP([2, HIDDEN, HIDDEN, 2], init_zeros=True)
        layers.append(nf.flows.MaskedAffineFlow(mask, t, s))
    return nf.NormalizingFlow(nf.distributions.DiagGaussian(2, trainable=False), layers)


def nll(model, x):
    with torch.no_grad():
        return (-model.log_prob(x).mean()).item()


def train(model, max_steps=None, target=None):
    """Train until ``max_steps`` (throughput; never capped) or until the test NLL <= ``target``.

    Returns ``(steps, seconds)``; for a target not reached within CAP_S seconds, ``(None, None)``.
    """
    if (max_steps is None) == (target is None):
        raise ValueError("give exactly one of max_steps and target")
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    g = torch.Generator().manual_seed(0)
    step, start = 0, time.perf_counter()
    while True:
        for xb in data.batches(x_train, BATCH, generator=g, drop_last=True):
            loss = -model.log_prob(xb).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            elapsed = time.perf_counter() - start
            if max_steps is not None:
                if step == max_steps:
                    return step, elapsed
                continue
            if step % 200 == 0 and nll(model, x_test) <= target:
                return step, elapsed
            if elapsed > CAP_S:  # the target was not reached within the cap
                return None, None


for name, make in (("flowedu", flowedu_model), ("normflows", normflows_model)):
    torch.manual_seed(0)
    train(make(), max_steps=20)  # warm-up
    torch.manual_seed(0)
    steps, seconds = train(make(), max_steps=STEPS)
    torch.manual_seed(0)
    model = make()
    reach_steps, reach_s = train(model, target=1.9)
    report(f"flows.realnvp_moons.{name}", batch=BATCH, hidden=HIDDEN, couplings=4,
           steps_per_s=round(steps / seconds, 1), steps_to_nll_1_9=reach_steps,
           seconds_to_nll_1_9=None if reach_s is None else round(reach_s, 1), final_nll=round(nll(model, x_test), 4))
