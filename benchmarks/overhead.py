"""Per-update cost of lrlab's driver versus PyTorch's OneCycleLR and CyclicLR.

Both sides schedule the same thing (LR and momentum, the same 1cycle or triangular
curve) on an optimizer with 1 or 50 param groups. Each repetition times N updates of:
the bare optimizer, the optimizer plus PyTorch's scheduler (``opt.step();
sched.step()``), and the optimizer driven by lrlab (``opt.step()``; the driver runs from
the optimizer's step hook). Cases are interleaved and the median of the repetitions is
kept, so machine noise hits all of them alike.

Two optimizers: a no-op optimizer (a real ``torch.optim.Optimizer`` whose step does
nothing, so hooks and wrappers still run) isolates the scheduling cost, which is the
target ratio; SGD on small tensors shows what that cost is worth in a whole update.

    python benchmarks/overhead.py [--updates 2000] [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch.optim import lr_scheduler as tls

from lrlab import schedules as S
from lrlab.optim import HyperparamScheduler


class NoOpOptimizer(torch.optim.Optimizer):
    """An optimizer whose update does nothing: what remains is the cost of scheduling it."""

    def __init__(self, params: list[dict], lr: float = 0.1, momentum: float = 0.9) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum})

    def step(self, closure: None = None) -> None:  # type: ignore[override]
        return None


def _optimizer(groups: int, kind: str) -> torch.optim.Optimizer:
    params = []
    for _ in range(groups):
        p = torch.nn.Parameter(torch.zeros(16))
        p.grad = torch.zeros(16)
        params.append({"params": [p]})
    if kind == "noop":
        return NoOpOptimizer(params)
    return torch.optim.SGD(params, lr=0.1, momentum=0.9)


def _cases(
    groups: int, n: int, family: str, kind: str
) -> dict[str, Callable[[], Callable[[], None]]]:
    """Each case builds fresh objects and returns the per-update callable."""

    def bare() -> Callable[[], None]:
        return _optimizer(groups, kind).step

    def torch_sched() -> Callable[[], None]:
        opt = _optimizer(groups, kind)
        if family == "one_cycle":
            sched: tls.LRScheduler = tls.OneCycleLR(opt, max_lr=0.4, total_steps=n + 1)
        else:
            sched = tls.CyclicLR(opt, base_lr=0.01, max_lr=0.4, step_size_up=n // 8)

        def update() -> None:
            opt.step()
            sched.step()

        return update

    def lrlab_driver() -> Callable[[], None]:
        opt = _optimizer(groups, kind)
        if family == "one_cycle":
            lr: S.Schedule = S.one_cycle_torch(max_lr=0.4, total=n + 1)
            mom = S.cyclical_momentum(lr)
        else:
            lr = S.triangular(base_lr=0.01, max_lr=0.4, step_size=n // 8)
            mom = S.cyclical_momentum(lr, low=0.8, high=0.9)
        HyperparamScheduler(opt, lr=lr, momentum=mom)
        return opt.step

    return {"bare": bare, "torch": torch_sched, "lrlab": lrlab_driver}


def measure(groups: int, family: str, kind: str, n: int, repeats: int) -> dict[str, float]:
    """Median seconds per update for each case."""
    cases = _cases(groups, n, family, kind)
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for name, make in cases.items():
            update = make()
            update()  # warm-up outside the timed span
            start = time.perf_counter()
            for _ in range(n - 1):
                update()
            times[name].append((time.perf_counter() - start) / (n - 1))
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {args.updates} updates x {args.repeats} repeats, median")
    header = (
        f"{'optimizer':<9} {'schedule':<10} {'groups':>6} {'bare':>9} {'+PyTorch':>10}"
        f" {'+lrlab':>10}   {'lrlab/PyTorch':<28}"
    )
    print(header)
    print("-" * len(header))
    for kind in ("noop", "sgd"):
        for family, ref in (("one_cycle", "OneCycleLR"), ("triangular", "CyclicLR")):
            for groups in (1, 50):
                t = measure(groups, family, kind, args.updates, args.repeats)
                if kind == "noop":  # the scheduling cost itself: the target ratio
                    ratio = (t["lrlab"] - t["bare"]) / (t["torch"] - t["bare"])
                    what = f"{ratio:.2f} scheduling cost vs {ref}"
                else:
                    what = f"{t['lrlab'] / t['torch']:.2f} whole update vs {ref}"
                print(
                    f"{kind:<9} {family:<10} {groups:>6} {t['bare'] * 1e6:>7.1f}us"
                    f" {t['torch'] * 1e6:>8.1f}us {t['lrlab'] * 1e6:>8.1f}us   {what}"
                )


if __name__ == "__main__":
    main()
