"""Time per training update: plain SGD vs lrlab's LARS, LARC and automatic LLR (and timm's Lars).

One update is forward + backward + optimizer step on a fixed batch, so the ratios say
what each method costs in a real training loop. Models: the small 2-D CNN on 28x28
inputs and the CIFAR-style ResNet-18 at a CPU width. Every case is built fresh from the
same seed, cases are interleaved within each repetition, and the median over the
repetitions is kept. timm's ``Lars`` joins when timm imports (it needs torchvision, so
run this in an environment that has both, e.g. the peer venv of benchmarks/peers_env.sh).

    python benchmarks/layerwise_overhead.py [--updates 30] [--repeats 7] [--width 0.25]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from lrlab.models import build_model
from lrlab.optim import LARC, LARS, AutoLLR, HyperparamScheduler, param_groups
from lrlab.schedules import one_cycle

try:  # timm is optional: it needs torchvision
    from timm.optim import Lars as TimmLars
except Exception:  # any import failure means "not available here"
    TimmLars = None


def make_case(
    name: str, model_name: str, shape: tuple[int, ...], width: float, batch: int, total: int
) -> Callable[[], None]:
    torch.manual_seed(0)
    model = build_model(model_name, shape, 10, width=width)
    x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
    groups = param_groups(model, weight_decay=5e-4, no_decay_bias_norm=True)
    if name == "timm Lars":
        opt: torch.optim.Optimizer = TimmLars(groups, lr=0.1, momentum=0.9, trust_coeff=1e-3)
    else:
        opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    if name == "lrlab LARS":
        LARS(opt, trust_coefficient=1e-3)
    elif name == "lrlab LARC":
        LARC(opt, trust_coefficient=0.02)
    elif name == "lrlab auto LLR":
        auto = AutoLLR(opt)
        HyperparamScheduler(opt, lr=one_cycle(max_lr=0.1, total=total), groups=auto.groups())
    elif name == "SGD + lrlab 1cycle driver":
        HyperparamScheduler(opt, lr=one_cycle(max_lr=0.1, total=total))

    def update() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return update


def measure(
    model_name: str, shape: tuple[int, ...], width: float, batch: int, updates: int, repeats: int
) -> dict[str, float]:
    names = ["plain SGD", "SGD + lrlab 1cycle driver", "lrlab LARS", "lrlab LARC", "lrlab auto LLR"]
    if TimmLars is not None:
        names.append("timm Lars")
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(repeats):
        for n in names:
            update = make_case(n, model_name, shape, width, batch, updates * repeats + 10)
            update()  # warm-up
            start = time.perf_counter()
            for _ in range(updates):
                update()
            times[n].append((time.perf_counter() - start) / updates)
    return {n: statistics.median(v) for n, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, timm Lars {'available' if TimmLars else 'not importable'}, "
        f"{args.updates} updates x {args.repeats} repeats, {args.threads} thread(s), median"
    )
    for model_name, shape, width, batch in (
        ("cnn", (1, 28, 28), 1.0, 128),
        ("resnet18", (3, 32, 32), args.width, 64),
    ):
        t = measure(model_name, shape, width, batch, args.updates, args.repeats)
        base = t["plain SGD"]
        print(f"\n{model_name} (width {width}, batch {batch}): plain SGD {1e3 * base:.2f} ms")
        for name, v in t.items():
            timm = "timm Lars" in t and "LAR" in name
            extra = f"   vs timm {v / t['timm Lars']:.3f}" if timm else ""
            print(f"  {name:<28} {1e3 * v:8.2f} ms   x{v / base:.3f} plain SGD{extra}")


if __name__ == "__main__":
    main()
