"""Parameter groups by depth or by named blocks, each with a name and a depth index.

Layer-wise methods need two things from a model: which parameters belong together
(a layer, or a block such as ResNet's ``layer1``) and how deep each group sits. Every
group built here carries ``name`` and ``depth`` (0 = closest to the input) so that
policies, logs and freezing plans can address it. Optionally biases and normalisation
parameters go to separate groups without weight decay (timm's
``param_groups_weight_decay``; the LARS papers' practice of excluding them).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def is_no_decay(module: nn.Module, param_name: str, param: nn.Parameter) -> bool:
    """Biases, 1-d parameters and anything inside a normalisation layer skip weight decay."""
    return param_name.endswith("bias") or param.ndim <= 1 or isinstance(module, _NORM_TYPES)


def _leaf_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules that own parameters directly, in registration (input-to-output) order."""
    out = []
    for name, module in model.named_modules():
        if any(True for _ in module.parameters(recurse=False)):
            out.append((name or type(model).__name__, module))
    return out


#: One parameter's place: (group name, depth, whether it skips weight decay, parameter).
_Entry = tuple[str, int, bool, nn.Parameter]


def param_groups(
    model: nn.Module,
    by: str = "depth",
    blocks: Sequence[str] | None = None,
    *,
    weight_decay: float | None = None,
    no_decay_bias_norm: bool = True,
    only_trainable: bool = False,
) -> list[dict[str, Any]]:
    """Build optimizer param groups with ``name`` and ``depth`` entries.

    Args:
        model: the network.
        by: ``"depth"``: one group per layer that owns parameters, in registration
            order; ``"blocks"``: one group per pattern in ``blocks``.
        blocks: glob patterns over parameter names, in depth order, e.g.
            ``["stem*", "layer1*", "layer2*", "layer3*", "layer4*", "fc*"]``; a parameter
            goes to the first pattern it matches, and one matching none is an error.
        weight_decay: written into each group (and 0 into the no-decay groups); None
            leaves ``weight_decay`` to the optimizer's default.
        no_decay_bias_norm: split each group into a decaying part and a ``<name>.no_decay``
            part (biases, 1-d and normalisation parameters) with the same depth.
        only_trainable: skip parameters with ``requires_grad=False``.

    Returns:
        Groups for ``torch.optim.SGD(groups, ...)``; empty groups are left out.

    >>> import torch
    >>> nn = torch.nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    >>> [(g["name"], g["depth"], len(g["params"])) for g in param_groups(net, weight_decay=5e-4)]
    [('0', 0, 1), ('0.no_decay', 0, 1), ('1.no_decay', 1, 2), ('2', 2, 1), ('2.no_decay', 2, 1)]
    """
    if by not in ("depth", "blocks"):
        raise ValueError(f"by={by!r} is invalid; expected 'depth' or 'blocks'")
    if by == "depth":
        if blocks is not None:
            raise ValueError("blocks= is only used with by='blocks'")
        entries = _depth_entries(model)
    else:
        entries = _block_entries(model, blocks)
    return _grouped(entries, weight_decay, no_decay_bias_norm, only_trainable)


def _depth_entries(model: nn.Module) -> list[_Entry]:
    """Each parameter under its layer, the layers numbered in registration order."""
    entries = []
    for depth, (name, module) in enumerate(_leaf_layers(model)):
        for pname, p in module.named_parameters(recurse=False):
            entries.append((name, depth, is_no_decay(module, pname, p), p))
    return entries


def _block_entries(model: nn.Module, blocks: Sequence[str] | None) -> list[_Entry]:
    """Each parameter under the first of ``blocks`` (glob patterns) its name matches."""
    if not blocks:
        raise ValueError(
            "by='blocks' needs blocks=[...] glob patterns, e.g. ['layer1*', 'layer2*']"
        )
    owners = {id(p): m for m in model.modules() for p in m.parameters(recurse=False)}
    entries: list[_Entry] = []
    unmatched = []
    for pname, p in model.named_parameters():
        hit = next((i for i, pat in enumerate(blocks) if fnmatch.fnmatchcase(pname, pat)), None)
        if hit is None:
            unmatched.append(pname)
            continue
        leaf = pname.rsplit(".", 1)[-1]
        entries.append(
            (blocks[hit].rstrip("*.") or blocks[hit], hit, is_no_decay(owners[id(p)], leaf, p), p)
        )
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (" ..." if len(unmatched) > 5 else "")
        raise ValueError(
            f"blocks: {len(unmatched)} parameter(s) match no pattern ({shown}); "
            "add a pattern such as '*' at the end to collect the rest"
        )
    return entries


def _grouped(
    entries: list[_Entry],
    weight_decay: float | None,
    no_decay_bias_norm: bool,
    only_trainable: bool,
) -> list[dict[str, Any]]:
    """The entries gathered into groups (a no-decay part split off if asked), by depth."""
    groups: dict[tuple[str, bool], dict[str, Any]] = {}
    for name, depth, no_decay, p in entries:
        if only_trainable and not p.requires_grad:
            continue
        split = no_decay and no_decay_bias_norm
        key = (name, split)
        if key not in groups:
            g: dict[str, Any] = {
                "params": [],
                "name": f"{name}.no_decay" if split else name,
                "depth": depth,
            }
            if weight_decay is not None:
                g["weight_decay"] = 0.0 if split else float(weight_decay)
            groups[key] = g
        groups[key]["params"].append(p)
    return sorted(groups.values(), key=lambda g: (g["depth"], g["name"].endswith(".no_decay")))


def depth_count(groups: Sequence[Mapping[str, Any]]) -> int:
    """Number of distinct depths among param groups built by `param_groups`."""
    depths = [g.get("depth") for g in groups]
    if any(d is None for d in depths):
        raise ValueError(
            "param groups need a 'depth' entry; build them with lrlab.optim.param_groups"
        )
    return 1 + max(int(d) for d in depths)  # type: ignore[arg-type]


def match_groups(groups: Sequence[Mapping[str, Any]], patterns: str | Sequence[str]) -> list[int]:
    """Indices of the groups whose ``name`` matches any of the glob ``patterns``."""
    pats = [patterns] if isinstance(patterns, str) else list(patterns)
    names = [str(g.get("name", i)) for i, g in enumerate(groups)]
    hits = [i for i, n in enumerate(names) if any(fnmatch.fnmatchcase(n, p) for p in pats)]
    if not hits:
        raise ValueError(f"no param group matches {pats}; groups: {', '.join(names)}")
    return hits
