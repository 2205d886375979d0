"""Study files: validation messages that name the field and the value; resolution of schedules."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrlab import schedules as S
from lrlab.cli.main import main
from lrlab.study import expand, load_study, materialize, parse_study

BASE = {
    "name": "t",
    "seeds": [0, 1],
    "task": {"data": "digits", "model": "mlp", "epochs": 2},
    "arms": [{"name": "a", "lr": "constant(level=0.1)"}],
}


def _with(path: str, value: object) -> dict:
    import copy

    d = copy.deepcopy(BASE)
    node = d
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    last = keys[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return d


BAD = [
    (
        _with("task.data", "mnist"),
        "task.data: data='mnist' is not a dataset; expected one of fashion-mnist",
    ),
    (_with("task.model", "vgg"), "task.model: model='vgg' is not a model"),
    (
        _with("task.batch_size", 0),
        "task.batch_size: Input should be greater than or equal to 1 (got 0)",
    ),
    (
        _with("task.device", "tpu"),
        "task.device: Input should be 'cpu', 'cuda' or 'auto' (got 'tpu')",
    ),
    (_with("arms.0.lrr", 1), "arms[0].lrr: Extra inputs are not permitted"),
    (
        _with("arms.0.lr", "onecycle()"),
        "arms[0].lr: unknown schedule 'onecycle' (did you mean 'one_cycle'?)",
    ),
    (
        _with("arms.0.lr", {"kind": "one_cycle", "maxlr": 1}),
        "arms[0].lr: one_cycle: unknown parameter(s) maxlr",
    ),
    (_with("arms.0.lr", "cosine(init=-1, total=5)"), "arms[0].lr: cosine: init=-1.0 is invalid"),
    (
        _with("arms", [{"name": "a", "lr": "constant(level=1)"}] * 2),
        "arm names must be unique; repeated: a",
    ),
    ({**BASE, "baseline": "b"}, "baseline='b' is not an arm; arms: a"),
    (
        _with(
            "arms.0.lr", {"kind": "triangular", "base_lr": 0.1, "max_lr": 1, "step_size": "4 epoks"}
        ),
        "arms[0].lr",
    ),
    (
        _with("arms.0.range_test", {"start_lr": 1, "end_lr": 0.1}),
        "end_lr=0.1 must be > start_lr=1.0",
    ),
    (_with("arms.0.range_test", {"rule": "best"}), "rule='best' is not a range-test rule"),
    (
        _with("arms.0.layerwise", {"policy": "interpolate", "first": 2}),
        "policy = 'interpolate' needs last",
    ),
    (_with("arms.0.momentum", 1.5), "arms[0].momentum"),
    (
        _with("arms.0.momentum", "cyclical"),
        "arms[0].momentum: mirror: schedule='constant(level=0.1)' is invalid",
    ),
    ({**BASE, "targets": {"accuracy": 0.9}}, "targets: unknown metric(s) accuracy"),
    (_with("optimizer", {"name": "lamb"}), "optimizer.name: name='lamb' is not an optimizer"),
    ({**BASE, "seeds": []}, "seeds: List should have at least 1 item"),
    ({**BASE, "name": "a b"}, "name: String should match pattern"),
]


@pytest.mark.parametrize(("data", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_configs_give_one_line_naming_field_and_value(data: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_study(data, source="s.toml")
    text = str(info.value)
    assert text.startswith("s.toml: ") and message in text, text
    assert "\n" not in text


def test_cli_exits_2_with_one_line_on_a_bad_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "x"\n[task]\ndata = "mnist"\nmodel = "mlp"\n'
        '[[arms]]\nname = "a"\nlr = "constant(level=1)"\n'
    )
    assert main(["study", "run", str(bad), "--dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("error: bad.toml: task.data: data='mnist' is not a dataset")
        and "\n" not in err
    )
    (tmp_path / "broken.toml").write_text("name = [")
    assert main(["study", "run", str(tmp_path / "broken.toml")]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_presets_override_and_bundled_studies_load() -> None:
    root = Path(__file__).resolve().parent.parent / "studies"
    for path in root.glob("*.toml"):
        load_study(path)
    demo = load_study(root / "demo.toml", "quick")
    assert demo.seeds == [0] and demo.task.epochs == 4 and demo.task.model == "cnn1d"
    with pytest.raises(ValueError, match="preset 'paper' not found; presets: quick"):
        load_study(root / "demo.toml", "paper")


def test_materialize_fills_total_epochs_and_bounds() -> None:
    s = materialize("one_cycle(max_lr=0.4)", total=1000, iters_per_epoch=40)
    assert s == S.one_cycle(max_lr=0.4, total=1000)
    m = materialize(
        {"kind": "multistep", "milestones": ["2 epochs", "3.5 epochs"], "init": 0.1},
        total=200,
        iters_per_epoch=40,
    )
    assert m.milestones == (80, 140) and m.length is None
    tri = materialize(
        {"kind": "triangular"},
        total=400,
        iters_per_epoch=40,
        bounds={"base_lr": 0.01, "max_lr": 0.1, "step_size": 160},
    )
    assert (tri.base_lr, tri.max_lr, tri.step_size) == (0.01, 0.1, 160)
    oc = materialize(
        {"kind": "one_cycle", "max_lr": 0.3},
        total=100,
        iters_per_epoch=10,
        bounds={"base_lr": 0.01, "max_lr": 0.1},
    )
    assert oc.max_lr == 0.3 and oc.base_lr == 0.01  # explicit values win over the range test
    w = materialize("warmup(cosine(init=0.1), steps=50)", total=500, iters_per_epoch=50)
    assert w.length == 500 and w.schedule.length == 450
    c = materialize({"kind": "constant"}, total=100, iters_per_epoch=10, bounds={"max_lr": 0.02})
    assert c == S.constant(level=0.02)


def test_expand_gives_one_trial_per_arm_and_seed_with_stable_hashes() -> None:
    study = parse_study(
        {
            **BASE,
            "arms": [
                {"name": "a", "lr": "constant(level=0.1)"},
                {"name": "b/c", "lr": "constant(level=0.2)", "epochs": 5},
            ],
        }
    )
    specs = expand(study, "/ck")
    assert [s.id for s in specs] == ["a@seed0", "a@seed1", "b/c@seed0", "b/c@seed1"]
    assert specs[2].config["task"]["epochs"] == 5 and specs[0].config["task"]["epochs"] == 2
    assert specs[0].config_hash != specs[1].config_hash
    assert "/" not in specs[2].checkpoint_dir.split("/ck/")[1]
    assert expand(study, "/ck")[0].config_hash == specs[0].config_hash


def test_trial_identity_ignores_settings_left_at_their_defaults() -> None:
    plain = parse_study(BASE)
    spelled = parse_study(
        {
            **BASE,
            "arms": [
                {
                    "name": "a",
                    "lr": "constant(level=0.1)",
                    "snapshots": False,
                    "torch_scheduler": None,
                }
            ],
            "task": {**BASE["task"], "holdout": None, "amp": False},
        }
    )
    assert [s.config_hash for s in expand(plain, "/c")] == [
        s.config_hash for s in expand(spelled, "/c")
    ]
    changed = parse_study({**BASE, "task": {**BASE["task"], "holdout": 0.0}})
    assert expand(changed, "/c")[0].config_hash != expand(plain, "/c")[0].config_hash
