"""lrlab.rangetest.signal: sweeps without signal are detected and handled (hand-made curves)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from lrlab.rangetest import LowConfidenceWarning, RangeTestResult, range_test
from lrlab.rangetest import rules as R
from lrlab.rangetest.signal import (
    MIN_POINTS,
    ONSET_FRACTION,
    VAL_MULTIPLE,
    check_signal,
    refine_range,
)
from lrlab.rangetest.smoothing import local_linear_matrix
from lrlab.rangetest.sweep import _refinement

LRS = np.logspace(-7, 1, 100)  # the default ladder: 100 updates over eight decades


def _result(losses: np.ndarray, stop: str = "completed", **kw: object) -> RangeTestResult:
    n = len(losses)
    return RangeTestResult(
        "exp", 1e-7, 10.0, 100, list(LRS[:n]), list(losses), list(losses), stop, n, **kw
    )


def _noise(n: int, sd: float, seed: int = 0) -> np.ndarray:
    return sd * np.random.default_rng(seed).standard_normal(n)


def _val(drop_at: float | None, n: int = 21) -> tuple[list[float], list[float]]:
    """Validation every five updates: flat at 0.70, or a dip to 0.50 centred at ``drop_at``."""
    idx = np.linspace(0, 99, n).round().astype(int)
    lrs = LRS[idx]
    if drop_at is None:
        return list(lrs), [0.70] * n
    depth = 0.2 * np.exp(-0.5 * (np.log10(lrs / drop_at) / 0.5) ** 2)
    return list(lrs), list(0.70 - depth)


def test_a_flat_loss_has_no_signal_and_the_second_sweep_covers_the_top_four_decades() -> None:
    r = _result(0.69 + _noise(100, 0.01))
    sig = r.signal()
    assert not sig.ok and sig.reasons[0].startswith("no signal: the loss fell by")
    assert sig.moved_from is None and sig.val_lr is None
    assert refine_range(sig, r.lrs, r.losses, mode="exp", start_lr=1e-7, end_lr=10.0) == (
        pytest.approx(1e-3),
        10.0,
    )
    assert _refinement(r) == (pytest.approx(1e-3), 10.0)
    s = r.suggest()
    assert not s.confident and any("no signal" in w for w in s.warnings)
    with pytest.warns(LowConfidenceWarning, match="not confident: no signal"):
        r.bounds("one_cycle")


def test_flat_then_up_refines_from_a_decade_below_the_rise_to_where_it_stopped() -> None:
    # flat within noise 0.005 up to 1e-1, then a climb to 3x; the sweep diverged at index 95
    x = np.log10(LRS[:96])
    y = 0.69 + _noise(96, 0.005, seed=1) + 2.0 * np.clip(x + 1, 0, None) ** 2
    r = _result(y, "diverged")
    sig = r.signal()
    assert not sig.ok
    # the climb leaves the noise band (3 x 0.005, or 1% of 0.69) at 2 (x + 1)^2 > 0.0069,
    # lr > 0.115; the smoothed curve (bandwidth 0.32 decades) leaves it up to 1.5
    # bandwidths earlier
    assert 0.115 / 10**0.48 <= sig.moved_from <= 0.115
    lo, hi = refine_range(sig, r.lrs, r.losses, mode="exp", start_lr=1e-7, end_lr=10.0)
    assert lo == pytest.approx(sig.moved_from / 10)  # a decade below where it moved
    assert hi == 10.0  # 3 x where it stopped (14.3), at most end_lr


def test_noisy_flat_loss_with_a_validation_signal_is_read_off_the_validation_loss() -> None:
    val_lrs, val_losses = _val(drop_at=3e-3)
    r = _result(0.69 + _noise(100, 0.02, seed=2), val_lrs=val_lrs, val_losses=val_losses)
    sig = r.signal()
    # the dip's bottom: the first evaluation within a tenth of the drop (0.02) of its minimum
    bottom = next(i for i, v in enumerate(val_losses) if v <= 0.70 - 0.9 * 0.2)
    assert 0 < bottom <= int(np.argmin(val_losses))
    assert not sig.ok and sig.val_lr == pytest.approx(VAL_MULTIPLE * val_lrs[bottom])
    s = r.suggest()
    assert s.lr == sig.val_lr and s.confident and "validation loss" in s.reason
    # a second sweep is still run (the training loss is the calibrated reading); the
    # validation reading is what is used when that one has no signal either
    assert _refinement(r) is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowConfidenceWarning)
        assert r.bounds("one_cycle").max_lr == s.lr
    # a flat bottom: 0.70 falls to 0.399; 90% of the drop (0.429) is first reached at 1e-2,
    # two ladder steps before the lowest point
    bottomed = [0.7] * 5 + [0.5, 0.45, 0.41, 0.405, 0.40, 0.399, 0.9]
    flat_lrs = [10.0 ** (k / 2 - 5.5) for k in range(12)]
    assert check_signal(r.lrs, r.losses, flat_lrs, bottomed).val_lr == pytest.approx(1.4e-2)
    # a flat validation curve gives no reading
    flat_lrs, flat = _val(None)
    assert check_signal(r.lrs, r.losses, flat_lrs, flat).val_lr is None


def test_a_too_short_sweep_is_flagged_and_its_validation_minimum_not_trusted() -> None:
    lrs = np.logspace(-7, 1, 18)
    y = 0.3 + 2.0 / (1 + np.exp(4 * (np.log10(lrs) + 3)))
    val_lrs, val_losses = list(lrs), list(y + 0.1)
    r = RangeTestResult(
        "exp", 1e-7, 10.0, 20, list(lrs), list(y), list(y), "completed", 18,
        val_lrs=val_lrs, val_losses=val_losses,
    )  # fmt: skip
    sig = r.signal()
    assert sig.reasons == ("only 18 points: too short a sweep to read with confidence",)
    assert sig.val_lr is None  # below MIN_POINTS the validation minimum sits decades late
    assert MIN_POINTS > 18 and not r.suggest().confident
    lo, hi = refine_range(sig, r.lrs, r.losses, mode="exp", start_lr=1e-7, end_lr=10.0)
    assert hi == 10.0 and lo == pytest.approx(sig.moved_from / 10)


def test_a_clear_curve_has_a_signal_and_is_not_refined() -> None:
    x = np.log10(LRS)
    y = 0.3 + 2.0 / (1 + np.exp(4 * (x + 3))) + 3.0 * np.clip(x + 1, 0, None) ** 2
    r = _result(y + _noise(100, 0.02, seed=4), "diverged")
    assert r.signal().ok and _refinement(r) is None and r.suggest().confident


def test_a_short_sweep_is_refined_within_the_given_updates_and_reports_both() -> None:
    torch.manual_seed(0)
    x = torch.randn(256, 4)
    y = (x[:, 0] > 0).long()
    data = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 256, 32)]

    def run(refine: bool) -> RangeTestResult:
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        kw = dict(loss_fn=torch.nn.functional.cross_entropy, num_updates=12, refine=refine)
        return range_test(model, opt, data, refine_updates=40, **kw)  # type: ignore[arg-type]

    plain, refined = run(False), run(True)
    assert plain.coarse is None and plain.tuning_updates == plain.updates <= 12
    assert refined.coarse is not None and refined.coarse["updates"] == plain.updates
    assert refined.num_updates == 40
    assert refined.tuning_updates == plain.updates + refined.updates
    assert refined.start_lr > plain.start_lr  # the window starts where the loss moved
    back = RangeTestResult.from_json(refined.to_json())
    assert back.coarse is not None and back.tuning_updates == refined.tuning_updates


def test_an_isolated_point_keeps_its_value_under_the_local_linear_smoother() -> None:
    # a linear sweep's first LR (1e-7) sits five decades below the next (0.1)
    x = np.log10(np.array([1e-7, 0.1, 0.2, 0.3, 0.4, 0.5]))
    s = local_linear_matrix(x, 0.1)
    y = np.array([2.3, 2.0, 1.5, 1.0, 1.2, 3.0])
    assert (s @ y)[0] == pytest.approx(2.3)


def test_smith_accuracy_stops_where_accuracy_turns_ragged() -> None:
    x = np.log10(LRS)
    acc = 0.1 + 0.8 / (1 + np.exp(-3 * (x + 4)))  # rises around 1e-4, saturates at 0.9
    acc = acc + _noise(100, 0.005, seed=5)
    acc[70:] += 0.15 * np.where(np.arange(30) % 2, 1.0, -1.0)  # ragged from index 70
    out = R.smith_accuracy(LRS, acc)
    assert 68 <= out.position <= 72 and "ragged" in out.reason
    smooth = R.smith_accuracy(LRS, 0.1 + 0.8 / (1 + np.exp(-3 * (x + 4))) - 0.3 * (x > -1))
    assert "stops" in smooth.reason


def test_clr_base_is_smiths_onset_for_smiths_rules() -> None:
    x = np.log10(LRS)
    y = 0.3 + 2.0 / (1 + np.exp(4 * (x + 3))) + 3.0 * np.clip(x + 1, 0, None) ** 2
    r = _result(y + _noise(100, 0.02, seed=6), "diverged")
    s = r.suggest("smith_loss")
    b = r.bounds("clr", rule="smith_loss")
    assert (b.base_lr, b.max_lr) == (s.low, s.lr) and s.low is not None and s.low < s.lr
    d = r.bounds("clr")  # the default rule has no base of its own: a quarter of the max
    assert d.base_lr == d.max_lr / 4


def test_a_study_refines_stops_or_uses_a_low_confidence_pick() -> None:
    from lrlab.cli.find import confidence_line
    from lrlab.study.arm_config import RangeTestConfig
    from lrlab.study.confidence import read_bounds

    flat = _result(0.69 + _noise(100, 0.01))
    asked: list[dict[str, object]] = []

    def run_sweep(**kw: object) -> RangeTestResult:
        asked.append(kw)
        return flat

    with pytest.warns(LowConfidenceWarning):
        _, b = read_bounds(RangeTestConfig(), "a", run_sweep, "one_cycle", 10, 300)
    assert asked[-1] == {"refine": True, "refine_updates": 100}  # 200 - the 100-update sweep
    assert b.suggestion.warnings and not b.suggestion.confident
    cfg = RangeTestConfig(on_low_confidence="use", confirm=[1, 2], confirm_updates=30)
    with pytest.warns(LowConfidenceWarning):
        read_bounds(cfg, "a", run_sweep, "one_cycle", 10, 300)
    assert asked[-1] == {"refine": False, "refine_updates": 100}  # confirm runs come on top
    with pytest.raises(ValueError, match=r"arm 'a': the range test's pick .* not confident"):
        read_bounds(
            RangeTestConfig(on_low_confidence="error"), "a", run_sweep, "one_cycle", 10, 300
        )
    with pytest.raises(ValueError, match="on_low_confidence"):
        RangeTestConfig(on_low_confidence="ignore")  # type: ignore[arg-type]
    assert confidence_line(flat).startswith("LOW CONFIDENCE: max_lr ")
    x = np.log10(LRS)
    y = 0.3 + 2.0 / (1 + np.exp(4 * (x + 3))) + 3.0 * np.clip(x + 1, 0, None) ** 2
    assert confidence_line(_result(y + _noise(100, 0.02), "diverged")).startswith("max_lr ")


def test_a_weight_decay_winner_that_leads_within_noise_is_called_a_tie() -> None:
    from lrlab.rangetest import HyperTestResult

    def run(val: list[float]) -> RangeTestResult:
        return RangeTestResult(
            "linear", 0.01, 0.1, 3, [0.01, 0.05, 0.1], [1.0] * 3, [1.0] * 3, "completed", 3,
            val_lrs=[0.01, 0.01, 0.05, 0.1], val_losses=val,
        )  # fmt: skip

    best, close = [2.0, 1.0, 1.0, 1.0], [2.0, 1.0001, 1.0003, 0.9999]
    ht = HyperTestResult("weight_decay", [1e-4, 1e-5], [run(best), run(close)], [1.0, 1.0001])
    lead = ht.lead()
    # paired differences 1e-4, 3e-4, -1e-4: mean 1e-4, sd 2e-4, standard error 2e-4 / sqrt 3
    assert (
        lead is not None
        and lead[0] == pytest.approx(1e-4)
        and lead[1] == pytest.approx(2e-4 / 3**0.5)
    )
    assert ht.best == 1e-4 and not ht.decisive and "tie" in ht.summary()
    far = HyperTestResult(
        "weight_decay", [1e-4, 1e-2], [run(best), run([2.0, 1.2, 1.21, 1.19])], [1.0, 1.2]
    )
    assert far.decisive and far.summary() == "weight_decay 0.0001, ahead by 0.2 ± 0.0058"


def test_a_linear_sweep_at_default_settings_is_refined_into_a_readable_curve() -> None:
    from lrlab.study.find import FindSettings, TaskConfig, find_on_task

    rt = find_on_task(
        TaskConfig(data="digits", model="mlp"), FindSettings(mode="linear")
    ).range_test
    # 0, 0.1, 0.2, ... : the first sweep diverges after a handful of points
    assert rt.coarse is not None and rt.coarse["updates"] < MIN_POINTS
    assert rt.mode == "linear" and rt.start_lr == 1e-7 and len(rt.losses) >= MIN_POINTS
    assert rt.end_lr == pytest.approx(rt.coarse["lrs"][-1])  # again, up to where it stopped
    assert rt.suggest().lr < rt.end_lr and rt.tuning_updates <= 200


def test_an_empty_validation_batch_is_skipped_not_read_as_nan() -> None:
    # slicing a 360-example split in chunks of 500 yields an empty second chunk: its mean
    # loss is NaN, and before it was skipped every validation reading of the sweep was NaN
    torch.manual_seed(0)
    x, y = torch.randn(360, 4), torch.randint(0, 2, (360,))
    data = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 320, 32)]
    val = [(x[i : i + 500], y[i : i + 500]) for i in range(0, 1000, 500)]
    assert len(val[1][1]) == 0
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    r = range_test(
        model, opt, data, loss_fn=torch.nn.functional.cross_entropy, val_data=val,
        num_updates=20, refine=False,
    )  # fmt: skip
    assert r.val_losses and all(np.isfinite(v) for v in r.val_losses)
    with torch.no_grad():  # the first reading is the untrained model's loss on all 360
        assert r.val_losses[0] == pytest.approx(
            float(torch.nn.functional.cross_entropy(model(x), y)), rel=1e-5
        )


def test_a_second_sweep_too_short_to_read_is_not_run() -> None:
    torch.manual_seed(0)
    x = torch.randn(256, 4)
    y = (x[:, 0] > 0).long()
    data = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 256, 32)]
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    kw = dict(loss_fn=torch.nn.functional.cross_entropy, num_updates=12)
    short = range_test(model, opt, data, refine_updates=MIN_POINTS - 1, **kw)  # type: ignore[arg-type]
    assert short.coarse is None and short.tuning_updates == short.updates <= 12
    read = range_test(model, opt, data, refine_updates=MIN_POINTS, **kw)  # type: ignore[arg-type]
    assert read.coarse is not None and read.num_updates == MIN_POINTS


def _flat_then_up(val: tuple[list[float], list[float]] | None = None) -> RangeTestResult:
    # flat within noise 0.005 up to 1e-1, then a climb to 3x; the sweep diverged at index 95
    x = np.log10(LRS[:96])
    y = 0.69 + _noise(96, 0.005, seed=1) + 2.0 * np.clip(x + 1, 0, None) ** 2
    kw = {"val_lrs": val[0], "val_losses": val[1]} if val else {}
    return _result(y, "diverged", **kw)


def test_flat_then_up_is_read_at_a_quarter_of_where_the_loss_began_to_rise() -> None:
    r = _flat_then_up()
    sig = r.signal()
    # the climb is the only feature: it leaves the noise band upwards where the loss moved
    assert sig.onset is not None and sig.onset == pytest.approx(sig.moved_from)
    assert 0.115 / 10**0.48 <= sig.onset <= 0.115
    s = r.suggest()
    assert s.lr == pytest.approx(ONSET_FRACTION * sig.onset) and ONSET_FRACTION == 0.25
    assert "began to rise" in s.reason
    assert not s.confident and "never left its starting plateau" in s.warnings[0]
    with pytest.warns(LowConfidenceWarning, match="began to rise"):
        assert r.bounds("one_cycle").max_lr == pytest.approx(s.lr)


def test_a_validation_dip_after_the_blow_up_began_is_not_read_as_learning() -> None:
    # the validation loss dips at 1.0, where the training loss is already climbing
    late = _flat_then_up(_val(drop_at=1.0))
    sig = late.signal()
    assert sig.val_lr is not None and sig.val_lr / VAL_MULTIPLE > sig.onset
    assert late.suggest().lr == pytest.approx(ONSET_FRACTION * sig.onset)
    # a dip well before the climb is learning the training loss was too noisy to show
    early = _flat_then_up(_val(drop_at=1e-3))
    sig = early.signal()
    assert sig.val_lr / VAL_MULTIPLE < sig.onset
    s = early.suggest()
    assert s.lr == pytest.approx(sig.val_lr) and "validation" in s.reason and s.confident
