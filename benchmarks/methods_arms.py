"""What `benchmarks/methods.py` compares: its tasks (with their published targets), the
arms, the tuning grids, and the two lrlab studies each task runs (grid, then comparison).
"""

from __future__ import annotations

from typing import Any

TASKS: dict[str, dict[str, Any]] = {
    "mnist1d-cnn": {
        "task": {"data": "mnist1d", "model": "cnn1d", "batch_size": 100, "epochs": 30},
        "target": 0.94,
        "published_updates": 6000,
        "source": "Greydanus (2020), MNIST-1D CNN: 94% with Adam 1e-2, batch 100, 6000 updates",
    },
    "mnist1d-mlp": {
        "task": {"data": "mnist1d", "model": "mlp", "batch_size": 100, "epochs": 30},
        "target": 0.68,
        "published_updates": 6000,
        "source": "Greydanus (2020), MNIST-1D MLP: 68% with Adam 1e-2, batch 100, 6000 updates",
    },
    "fmnist-cnn": {
        "task": {
            "data": "fashion-mnist",
            "model": "cnn",
            "batch_size": 128,
            "epochs": 3,
            "eval_every": "0.25 epochs",
        },
        "target": 0.916,
        "published_updates": 6250,
        "source": "Fashion-MNIST benchmark, 2 conv + pooling: 91.6% (TF tutorial: 2,000 steps of "
        "batch 400 = 800k examples = 6,250 updates of batch 128)",
    },
    "digits-mlp": {
        "task": {"data": "digits", "model": "mlp", "batch_size": 64, "epochs": 30},
        "target": 0.97,
        "published_updates": None,
        "source": "scikit-learn's digits example: 97% with an SVC; no update count, so the "
        "baseline arm's updates to 97% stand in for it",
    },
}
#: SGD LRs of the step / cosine / constant grids, Adam's LRs, Prodigy's d_coef values
GRID = [0.01, 0.03, 0.1, 0.3, 1.0]
ADAM_GRID = [0.001, 0.003, 0.01, 0.03, 0.1]
D_COEF_GRID = [0.3, 1.0, 3.0]
SGD = {"name": "sgd", "momentum": 0.9, "weight_decay": 5e-4}
BASELINE = "Adam 1e-2 (published)"
CHANCE = 10.0  # % accuracy of a guess on these 10-class tasks
#: the grid-tuned arms and the family of grid runs each is tuned by
GRID_ARMS = {
    "step decay (grid)": "step",
    "cosine (grid)": "cosine",
    "constant (grid)": "constant",
    "Adam (grid)": "adam",
    "Prodigy (d_coef grid)": "prodigy",
}
PACKAGES = ("schedulefree", "prodigyopt")
SF_SGD = {"name": "schedulefree_sgd", "lr": 1.0, "momentum": 0.9, "weight_decay": 5e-4}
SF_ADAMW = {"name": "schedulefree_adamw", "lr": 0.0025, "weight_decay": 5e-4}
PRODIGY = {"name": "prodigy", "lr": 1.0, "weight_decay": 5e-4}


def _adam(lr: float) -> dict[str, Any]:
    return {"name": "adam", "lr": lr, "weight_decay": 0.0}


def arms(tuned: dict[str, float] | None) -> list[dict[str, Any]]:
    """The compared arms; grid arms need their tuned values (None: only the untuned arms)."""
    constant_from_range_test = {"kind": "constant"}
    out: list[dict[str, Any]] = [
        {
            "name": "lrlab auto",
            "lr": {"kind": "one_cycle"},
            "momentum": "cyclical",
            "range_test": {"rule": "lrlab"},
        },
        {
            "name": "lrlab auto + confirm",
            "lr": {"kind": "one_cycle"},
            "momentum": "cyclical",
            "range_test": {"rule": "lrlab", "confirm": [1.0, 2.0, 4.0]},
        },
        {
            "name": "PyTorch OneCycleLR",
            "lr": {"kind": "one_cycle_torch"},
            "torch_scheduler": "OneCycleLR",
            "range_test": {"rule": "lrlab", "schedule": "one_cycle"},
        },
        {"name": BASELINE, "lr": "constant(level=0.01)", "optimizer": _adam(0.01)},
        {"name": "Schedule-Free SGD (defaults)", "lr": "constant(level=1.0)", "optimizer": SF_SGD},
        {
            "name": "Schedule-Free AdamW (defaults)",
            "lr": "constant(level=0.0025)",
            "optimizer": SF_ADAMW,
        },
        {
            "name": "Schedule-Free SGD (range test)",
            "lr": constant_from_range_test,
            "optimizer": SF_SGD,
            "range_test": {"rule": "lrlab"},
        },
        {
            "name": "Schedule-Free AdamW (range test)",
            "lr": constant_from_range_test,
            "optimizer": SF_ADAMW,
            "range_test": {"rule": "lrlab"},
        },
        {"name": "Prodigy (defaults)", "lr": "constant(level=1.0)", "optimizer": PRODIGY},
    ]
    if tuned is not None:
        out += [
            {
                "name": "step decay (grid)",
                "lr": f"multistep(init={tuned['step']}, milestones=['50%', '75%'])",
            },
            {"name": "cosine (grid)", "lr": f"cosine(init={tuned['cosine']})"},
            {"name": "constant (grid)", "lr": f"constant(level={tuned['constant']})"},
            {
                "name": "Adam (grid)",
                "lr": f"constant(level={tuned['adam']})",
                "optimizer": _adam(tuned["adam"]),
            },
            {
                "name": "Prodigy (d_coef grid)",
                "lr": "constant(level=1.0)",
                "optimizer": {**PRODIGY, "d_coef": tuned["prodigy"]},
            },
        ]
    return out


def grid_runs() -> dict[str, list[tuple[float, dict[str, Any]]]]:
    """Each tuned family's grid: ``family -> [(value, arm), ...]``."""
    return {
        "step": [
            (lr, {"name": f"step@{lr}", "lr": f"multistep(init={lr}, milestones=['50%', '75%'])"})
            for lr in GRID
        ],
        "cosine": [(lr, {"name": f"cosine@{lr}", "lr": f"cosine(init={lr})"}) for lr in GRID],
        "constant": [
            (lr, {"name": f"constant@{lr}", "lr": f"constant(level={lr})"}) for lr in GRID
        ],
        "adam": [
            (lr, {"name": f"adam@{lr}", "lr": f"constant(level={lr})", "optimizer": _adam(lr)})
            for lr in ADAM_GRID
        ],
        "prodigy": [
            (
                d,
                {
                    "name": f"prodigy@d_coef={d}",
                    "lr": "constant(level=1.0)",
                    "optimizer": {**PRODIGY, "d_coef": d},
                },
            )
            for d in D_COEF_GRID
        ],
    }


def grid_study(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": f"{name}-grid",
        "seeds": [100],
        "task": spec["task"],
        "optimizer": SGD,
        "arms": [arm for runs in grid_runs().values() for _, arm in runs],
    }


def final_study(
    name: str, spec: dict[str, Any], seeds: list[int], tuned: dict[str, float]
) -> dict[str, Any]:
    return {
        "name": f"{name}-methods",
        "seeds": seeds,
        "baseline": BASELINE,
        "question": f"{name}: which method reaches {100 * spec['target']:.1f}% first, "
        "and which is best at the budget?",
        "claim": spec["source"],
        "task": spec["task"],
        "optimizer": SGD,
        "targets": {"val_top1": spec["target"]},
        "arms": arms(tuned),
        "analysis": {"kind": "compare", "arms": ["lrlab auto"], "expect": "better"},
    }
