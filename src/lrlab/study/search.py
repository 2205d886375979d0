"""``lrlab search``: BOHB-style search over a study arm's settings with Optuna.

TPE (Optuna's Bayesian sampler) proposes settings; a Hyperband pruner stops weak trials
at epoch boundaries (the maintained BOHB-like combination). Every search trial is an
ordinary lrlab trial: the study's task, the searched arm with the proposed values, one
seed, trained by the same trainer. The search state is an Optuna journal file in the
study directory (``search/journal.log``), so several workers (``--workers N``, or
processes on other machines sharing the file) work on one search, and a crashed search
resumes: trials that were running are marked failed and run again from their checkpoint.
A Postgres URL can replace the journal (``--storage postgresql://...``).

When the search ends it writes ``search/best.toml``, a ready-to-run study with the best
setting as an arm beside the study's arms, and ``search/report.md`` with Optuna's
optimisation history and parameter importances.
"""

from __future__ import annotations

import copy
import json
import math
import multiprocessing as mp
import os
import socket
import warnings
from pathlib import Path
from typing import Any

from lrlab.schedules import bound_fields, spec_to_dict
from lrlab.study.config import StudyConfig, parse_study
from lrlab.study.preflight import preflight
from lrlab.study.resolve import TrialSpec, expand, trial_config, trial_hash
from lrlab.study.taskdata import metric_set

_EARLY_STOP = "search trial pruned"


def apply_params(cfg: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A trial config with the searched values written into the arm, optimizer and task.

    >>> cfg = {"arm": {"lr": {"kind": "one_cycle"}, "range_test": {"rule": "lrlab"},
    ...        "momentum": "cyclical", "layerwise": None}, "optimizer": {"weight_decay": 5e-4},
    ...        "task": {"batch_size": 100}}
    >>> out = apply_params(cfg, {"max_lr": 0.4, "base_lr_ratio": 0.25, "weight_decay": 1e-4})
    >>> out["arm"]["lr"], out["arm"]["range_test"], out["optimizer"]["weight_decay"]
    ({'kind': 'one_cycle', 'max_lr': 0.4, 'base_lr': 0.1}, None, 0.0001)
    """
    out = copy.deepcopy(cfg)
    arm = out["arm"]
    lr = spec_to_dict(arm["lr"])
    if "max_lr" in params:
        fields = bound_fields(lr["kind"])
        target = next((f for f, key in fields.items() if key == "max_lr"), "max_lr")
        lr[target] = float(params["max_lr"])
        arm["range_test"] = None  # the search sets the bounds
        if "base_lr_ratio" in params and "base_lr" in fields:
            lr["base_lr"] = float(params["max_lr"]) * float(params["base_lr_ratio"])
    arm["lr"] = lr
    if "momentum" in params:
        arm["momentum"] = float(params["momentum"])
    if "momentum_low" in params or "momentum_high" in params:
        arm["momentum"] = {
            "low": float(params.get("momentum_low", 0.85)),
            "high": float(params.get("momentum_high", 0.95)),
        }
    if "weight_decay" in params:
        out["optimizer"]["weight_decay"] = float(params["weight_decay"])
    if "batch_size" in params:
        out["task"]["batch_size"] = int(params["batch_size"])
    if "llr_first" in params or "llr_last" in params:
        arm["layerwise"] = {
            **(arm.get("layerwise") or {}),
            "policy": "interpolate",
            "first": float(params.get("llr_first", 1.0)),
            "last": float(params.get("llr_last", 1.0)),
            "geometric": True,
        }
    return out


def _suggest(trial: Any, name: str, r: Any) -> Any:
    if r.choices is not None:
        return trial.suggest_categorical(name, r.choices)
    return trial.suggest_float(name, r.low, r.high, log=r.log)


def _storage(directory: Path, url: str | None) -> Any:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if url:
        return optuna.storages.RDBStorage(url)
    directory.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(directory / "journal.log")))


def _study(study: StudyConfig, directory: Path, storage_url: str | None, worker: int = 0) -> Any:
    """The Optuna study; each worker samples with its own seed (``search.seed + worker``).

    Workers seeded alike would propose the same random start-up points, train identical
    configurations and race on their shared checkpoint directory.
    """
    import optuna

    assert study.search is not None
    # Hyperband's budget is the searched arm's epochs (an arm may override the task's).
    epochs = trial_config(study, study.search.arm, study.search.seed)["task"]["epochs"]
    primary = metric_set(study.task).primary
    return optuna.create_study(
        study_name=study.name,
        storage=_storage(directory, storage_url),
        load_if_exists=True,
        direction="maximize" if primary.higher_is_better else "minimize",
        sampler=optuna.samplers.TPESampler(seed=study.search.seed + worker),
        pruner=optuna.pruners.HyperbandPruner(
            min_resource=study.search.min_epochs,
            max_resource=epochs,
            reduction_factor=study.search.reduction_factor,
        ),
    )


def _objective(study: StudyConfig, directory: Path) -> Any:
    import optuna

    from lrlab.study.trainer import run_trial

    assert study.search is not None
    search = study.search
    primary = metric_set(study.task).primary
    worst = -math.inf if primary.higher_is_better else math.inf

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        params = {name: _suggest(trial, name, r) for name, r in search.space.items()}
        cfg = apply_params(trial_config(study, search.arm, search.seed), params)
        digest = trial_hash(cfg)
        spec = TrialSpec(
            f"search-{digest[:8]}",
            study.name,
            search.arm,
            search.seed,
            cfg,
            digest,
            str(directory / "checkpoints" / digest),
        )

        def progress(e: dict[str, Any]) -> None:
            value = e.get("value")
            if e.get("kind") == "epoch" and value is not None and math.isfinite(value):
                trial.report(float(value), e["epoch"])
                if trial.should_prune():
                    raise optuna.TrialPruned(_EARLY_STOP)

        result = run_trial(spec, progress)
        value = result["final"].get(primary.name)
        trial.set_user_attr("status", result["status"])
        trial.set_user_attr("updates", result["updates"])
        # a diverged trial has no final value: the worst possible one, not a made-up number
        return float(value) if value is not None else worst

    return objective


def _orphaned(trial: Any) -> bool:
    """A RUNNING trial whose process is gone: one of this machine's, with a dead pid.

    Trials running on other machines that share the storage are left alone; a trial that
    never recorded its process (it died before starting) counts as orphaned.
    """
    host, pid = trial.user_attrs.get("host"), trial.user_attrs.get("pid")
    if host is None or pid is None:
        return True
    if host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return int(pid) == os.getpid()  # our own pid: a previous run of this process


def _worker(
    study_dict: dict[str, Any],
    directory: str,
    storage_url: str | None,
    n_trials: int,
    worker: int = 0,
) -> None:
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = parse_study(study_dict)
    opt = _study(study, Path(directory), storage_url, worker)
    counted = (TrialState.COMPLETE, TrialState.PRUNED)
    if len(opt.get_trials(deepcopy=False, states=counted)) >= n_trials:
        return  # a resumed search that already has its trials
    opt.optimize(
        _objective(study, Path(directory)),
        catch=(ValueError, RuntimeError),
        callbacks=[MaxTrialsCallback(n_trials, states=counted)],
    )


def run_search(
    study: StudyConfig,
    directory: str | Path,
    n_trials: int,
    workers: int = 1,
    storage_url: str | None = None,
) -> dict[str, Any]:
    """Run (or resume) the search until ``n_trials`` trials completed or were pruned."""
    import optuna
    from optuna.trial import TrialState

    if study.search is None:
        raise ValueError(f"study {study.name!r} has no [search] table: say which arm and ranges")
    if n_trials < 1 or workers < 1:
        raise ValueError(f"--trials={n_trials} and --workers={workers}: expected integers >= 1")
    root = Path(directory) / "search"
    # before Optuna creates its journal; the task and model are checked once too
    preflight(study, root, root / "checkpoints", None, expand(study, str(root / "checkpoints")))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opt = _study(study, root, storage_url)
    for t in opt.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _orphaned(t):  # left running by a crash: run it again (from its checkpoint)
            opt.tell(t.number, state=TrialState.FAIL)
            opt.enqueue_trial(t.params, skip_if_exists=False)
    args = (study.model_dump(mode="json"), str(root), storage_url, n_trials)
    if workers == 1:
        _worker(*args)
    else:
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_worker, args=(*args, i)) for i in range(workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    return _finish(study, root, opt)


def _finish(study: StudyConfig, root: Path, opt: Any) -> dict[str, Any]:
    from optuna.trial import TrialState

    done = opt.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    done = [t for t in done if t.value is not None and math.isfinite(t.value)]
    if not done:
        raise ValueError("the search finished no trial; see search/journal.log")
    primary = metric_set(study.task).primary
    best = (max if primary.higher_is_better else min)(done, key=lambda t: t.value)
    assert study.search is not None
    cfg = apply_params(trial_config(study, study.search.arm, study.search.seed), best.params)
    arm = {k: v for k, v in cfg["arm"].items() if v is not None}
    arm["name"] = "search best"
    data = study.model_dump(mode="json", exclude_none=True)
    # The searched arm's own overrides and the searched optimizer and batch size belong
    # to the best arm only (trial_config moved them into the task and optimizer).
    if cfg["optimizer"] != study.optimizer.model_dump(mode="json"):
        arm["optimizer"] = {k: v for k, v in cfg["optimizer"].items() if v is not None}
    for key in ("epochs", "batch_size"):
        if cfg["task"][key] != getattr(study.task, key):
            arm[key] = cfg["task"][key]
    data["arms"] = [a for a in data["arms"] if a["name"] != "search best"] + [arm]
    data.pop("search", None)
    data["name"] = f"{study.name}-search-best"
    parse_study(data)  # the written study must load
    (root / "best.toml").write_text(_to_toml(data))
    summary = {
        "metric": primary.name,
        "metric_words": primary.words,
        "metric_scale": primary.scale,
        "metric_unit": primary.unit,
        "best_value": best.value,
        "best_params": best.params,
        "trials": len(opt.trials),
        "complete": len(done),
        "pruned": len(opt.get_trials(deepcopy=False, states=(TrialState.PRUNED,))),
        "best_file": str(root / "best.toml"),
    }
    _report(opt, root, summary)
    (root / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _report(opt: Any, root: Path, summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vm

    figures = []
    for name, plot in (
        ("history", vm.plot_optimization_history),
        ("importance", vm.plot_param_importances),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                plot(opt)
            fig = plt.gcf()
            fig.set_size_inches(7, 4)
            fig.tight_layout()
            fig.savefig(root / f"{name}.png", dpi=110)
            plt.close("all")
            figures.append(name)
        except (ValueError, RuntimeError, ImportError):
            continue  # e.g. importances need at least two finished trials
    lines = ["# Search", "", f"Best {best_text(summary)} with:", ""]
    lines += [
        f"- `{k}` = {v:.6g}" if isinstance(v, float) else f"- `{k}` = {v}"
        for k, v in summary["best_params"].items()
    ]
    lines += [
        "",
        f"{summary['trials']} trials: {summary['complete']} complete, "
        f"{summary['pruned']} pruned by Hyperband. Ready-to-run study: `best.toml`.",
        "",
    ]
    lines += [f"![{n}]({n}.png)" for n in figures]
    (root / "report.md").write_text("\n".join(lines) + "\n")


def best_text(summary: dict[str, Any]) -> str:
    """``validation accuracy 97.50%`` or ``validation mae 0.0312``: the best value, shown.

    >>> best_text({"metric_words": "validation accuracy", "metric_scale": 100.0,
    ...            "metric_unit": "points", "best_value": 0.975})
    'validation accuracy 97.50%'
    """
    value = summary["best_value"] * summary.get("metric_scale", 100.0)
    if summary.get("metric_unit", "points") == "points":
        return f"{summary.get('metric_words', 'validation accuracy')} {value:.2f}%"
    return f"{summary['metric_words']} {value:.4g}"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return (
            "{ "
            + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items() if x is not None)
            + " }"
        )
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _to_toml(data: dict[str, Any]) -> str:
    lines = ["# Written by lrlab search: the study's arms plus the best searched setting."]
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    arms = data.get("arms", [])
    for k, v in data.items():
        if k not in tables and k != "arms" and v is not None:
            lines.append(f"{k} = {_toml_value(v)}")
    for k, v in tables.items():
        lines += ["", f"[{k}]"] + [
            f"{kk} = {_toml_value(vv)}" for kk, vv in v.items() if vv is not None
        ]
    for arm in arms:
        lines += ["", "[[arms]]"] + [
            f"{kk} = {_toml_value(vv)}" for kk, vv in arm.items() if vv is not None
        ]
    return "\n".join(lines) + "\n"
