"""``lrlab.study.run`` from Python: a study dict and a task factory, local workers, and the
one-line errors for scripts whose workers could not start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import lrlab.study
from lrlab.study import StudyStore, parse_study

TASK = """
import torch
from torch.utils.data import TensorDataset
import lrlab

def line(n: int = 96) -> lrlab.Task:
    x = torch.linspace(-1, 1, n).unsqueeze(1)
    data = TensorDataset(x, 3 * x + 0.5)
    return lrlab.Task(lambda: torch.nn.Linear(1, 1), data, data,
                      torch.nn.functional.mse_loss, batch_size=16)
"""

STUDY = {
    "name": "api",
    "seeds": [0, 1],
    "task": {"epochs": 2, "options": {"n": 64}},
    "arms": [
        {"name": "constant", "lr": "constant(level=0.1)"},
        {"name": "1cycle", "lr": "one_cycle(max_lr=0.2)", "momentum": "cyclical"},
    ],
}


def _numbers(directory: Path) -> dict[str, object]:
    store = StudyStore(directory / "study.db")
    out = {
        t.id: (t.status, {n: store.series(t.id, n) for n in store.metric_names(t.id)})
        for t in store.trials()
    }
    store.close()
    return out


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    (tmp_path / "api_user_task.py").write_text(TASK)
    monkeypatch.syspath_prepend(str(tmp_path))
    import api_user_task

    return api_user_task


def test_run_takes_a_study_dict_and_a_factory(user_module: object, tmp_path: Path) -> None:
    summary = lrlab.study.run(STUDY, tmp_path / "a", task=user_module.line)  # type: ignore[attr-defined]
    assert (summary.ran, summary.failed) == (4, [])
    store = StudyStore(tmp_path / "a" / "study.db")
    assert store.meta("config")["task"]["entry"] == "api_user_task:line"
    assert store.meta("metrics")["validation"][0]["name"] == "val_loss"
    t = store.trial("1cycle@seed0")
    assert t is not None and t.updates == 2 * 4  # 64 points, batches of 16
    store.close()
    # a StudyConfig works too, and the same factory by entry point gives the same numbers
    config = parse_study({**STUDY, "task": {**STUDY["task"], "entry": "api_user_task:line"}})
    lrlab.study.run(config, tmp_path / "b")
    assert _numbers(tmp_path / "a") == _numbers(tmp_path / "b")


def test_run_refuses_two_tasks_and_unsendable_factories(user_module: object) -> None:
    with pytest.raises(ValueError, match=r"task= and the study's task\.data/model/entry"):
        lrlab.study.run(
            {**STUDY, "task": {"data": "digits", "model": "mlp"}},
            task=user_module.line,  # type: ignore[attr-defined]
        )
    with pytest.raises(ValueError, match=r"cannot be sent to worker processes .*workers=1"):
        lrlab.study.run(STUDY, task=lambda: user_module.line(), workers=2)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"give workers= .* or executor=, not both"):
        lrlab.study.run(STUDY, task=user_module.line, workers=2, executor=object())  # type: ignore[arg-type,attr-defined]


SCRIPT = """
import lrlab.study
{task}
STUDY = {study!r}
{call}
"""


def _script(tmp_path: Path, call: str, task: str) -> subprocess.CompletedProcess:
    path = tmp_path / "train.py"
    path.write_text(SCRIPT.format(task=task, study=STUDY, call=call))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    return subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True
    )


def test_an_unguarded_script_with_workers_gets_told_what_to_add(
    user_module: object, tmp_path: Path
) -> None:
    call = f"lrlab.study.run(STUDY, {str(tmp_path / 'x')!r}, task=line, workers=2)"
    proc = _script(tmp_path, call, "from api_user_task import line\n")
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: train.py:6: lrlab.study.run(..., workers=2) at the top")
    assert last.endswith('put the call under `if __name__ == "__main__":`')
    assert "EOFError" not in proc.stderr and not (tmp_path / "x").exists()


@pytest.mark.slow
def test_a_guarded_script_runs_its_factory_in_worker_processes(
    user_module: object, tmp_path: Path
) -> None:
    call = (
        'if __name__ == "__main__":\n'
        f"    s = lrlab.study.run(STUDY, {str(tmp_path / 'pool')!r}, task=line, workers=2)\n"
        "    print(s.ran, s.failed)"
    )
    proc = _script(tmp_path, call, TASK)  # the factory lives in the script itself
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "4 []"
    lrlab.study.run(STUDY, tmp_path / "seq", task=user_module.line)  # type: ignore[attr-defined]
    assert _numbers(tmp_path / "pool") == _numbers(tmp_path / "seq")
