"""An optimizer subclass whose step() calls super().step(): lrlab's hooks act once per update.

torch runs step hooks from a wrapper it puts around each optimizer class's ``step``; once
an instance of the base class exists, a subclass calling ``super().step()`` runs them
twice per update. Before lrlab guarded against it, the driver counted 20 updates for 10
(every LR of the schedule taken twice as fast) and LARS rescaled the gradients twice.
"""

from __future__ import annotations

import torch

from lrlab.optim import LARS, HyperparamScheduler, Instrument
from lrlab.schedules import one_cycle


class Subclassed(torch.optim.SGD):
    def step(self, closure=None):  # type: ignore[no-untyped-def]
        return super().step(closure)


def _train(cls: type, lars: bool) -> tuple[torch.Tensor, HyperparamScheduler, list[float]]:
    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)  # SGD.step now hooked
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 3))
    opt = cls([w], lr=0.1, momentum=0.9, weight_decay=1e-4)
    driver = HyperparamScheduler(opt, lr=one_cycle(max_lr=0.5, total=10))
    trust = LARS(opt, trust_coefficient=0.01) if lars else None
    used = []
    for _ in range(10):
        used.append(opt.param_groups[0]["lr"])
        w.grad = torch.sin(w.detach() * 3.0)  # a gradient that depends on the weights
        opt.step()
    if trust is not None:
        trust.remove()
    return w.detach().clone(), driver, used


def test_the_driver_counts_each_update_once_and_uses_every_lr_of_the_schedule() -> None:
    w, driver, used = _train(Subclassed, lars=False)
    w_plain, plain, used_plain = _train(torch.optim.SGD, lars=False)
    lr = one_cycle(max_lr=0.5, total=10)
    assert driver.step_count == plain.step_count == 10
    assert used == used_plain == [lr(t) for t in range(10)]
    assert torch.equal(w, w_plain)


def test_lars_rescales_once_per_update() -> None:
    w, _, _ = _train(Subclassed, lars=True)
    w_plain, _, _ = _train(torch.optim.SGD, lars=True)
    assert torch.equal(w, w_plain)


def test_the_instrument_records_one_row_per_update() -> None:
    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    w = torch.nn.Parameter(torch.ones(3))
    opt = Subclassed([w], lr=0.1)
    inst = Instrument(opt, every=1)
    for _ in range(6):
        w.grad = torch.ones(3)
        opt.step()
    assert [r.step for r in inst.records] == list(range(6))
