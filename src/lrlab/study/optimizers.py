"""Optimizers a study can name: torch's, and the learning-rate-free ones people compare with."""

from __future__ import annotations

import importlib
from typing import Any

import torch

#: Optimizers that live in a package of their own: name -> the package to install.
PACKAGES = {
    "schedulefree_sgd": "schedulefree",
    "schedulefree_adamw": "schedulefree",
    "prodigy": "prodigyopt",
}


def make_optimizer(cfg: Any, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """Build the optimizer named by ``cfg["name"]`` over ``groups``: ``cfg`` is an
    `OptimizerConfig` or a dict of its fields.

    ``schedulefree_sgd``/``schedulefree_adamw`` need ``pip install schedulefree`` and
    ``prodigy`` needs ``pip install prodigyopt``; a missing package is a clear error.
    """
    if hasattr(cfg, "model_dump"):
        cfg = cfg.model_dump()
    name, lr, wd = cfg["name"], float(cfg["lr"]), float(cfg["weight_decay"])
    betas = tuple(cfg.get("betas", (0.9, 0.999)))
    if name == "sgd":
        return torch.optim.SGD(
            groups,
            lr=lr,
            momentum=float(cfg["momentum"]),
            nesterov=bool(cfg.get("nesterov", False)),
            weight_decay=wd,
        )
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=betas, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, weight_decay=wd)
    if name in ("schedulefree_sgd", "schedulefree_adamw"):
        sf = _import("schedulefree", "schedulefree")
        if name == "schedulefree_sgd":
            return sf.SGDScheduleFree(
                groups, lr=lr, momentum=float(cfg["momentum"]), weight_decay=wd
            )
        return sf.AdamWScheduleFree(groups, lr=lr, betas=betas, weight_decay=wd)
    if name == "prodigy":
        prodigy = _import("prodigyopt", "prodigyopt")
        d_coef = float(cfg.get("d_coef", 1.0))
        return prodigy.Prodigy(groups, lr=lr, betas=betas, weight_decay=wd, d_coef=d_coef)
    raise ValueError(f"optimizer name={name!r} is not known")


def _import(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(
            f"this optimizer needs the {package!r} package: pip install {package}"
        ) from None


def has_train_eval_modes(optimizer: torch.optim.Optimizer) -> bool:
    """Schedule-free optimizers keep two points and must be told train() / eval()."""
    return callable(getattr(optimizer, "train", None)) and callable(
        getattr(optimizer, "eval", None)
    )
