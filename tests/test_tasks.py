"""Downstream tasks: metric code on hand-made inputs, split, budget, and one cell per task."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kgvsf_explore.tasks import (
    TASKS,
    ProtocolConfig,
    budget_mask,
    confusion,
    driver_features,
    f1_scores,
    frozen_inputs,
    make_split,
    r2_rmse,
    run_cell,
    sharpness_ratio,
)
from kgvsf_explore.tasks.future_image import gradient_magnitude, native_forecast

# ------------------------------------------------------------------------------------------
# metrics on hand-made inputs


def test_macro_f1_perfect_and_constant_predictors():
    truth = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    macro, per = f1_scores(truth, truth, 5)
    assert macro == 1.0
    assert np.all(per[:4] == 1.0) and np.isnan(per[4])  # class 4 neither true nor predicted
    # a constant predictor of class 0: precision 2/8, recall 1 -> F1 0.4; others 0
    macro, per = f1_scores(truth, np.zeros_like(truth), 5)
    assert per[0] == pytest.approx(0.4)
    assert macro == pytest.approx(0.4 / 4)
    cm = confusion(truth, np.zeros_like(truth), 5)
    assert cm[:, 0].tolist() == [2, 2, 2, 2, 0] and cm.sum() == 8


def test_r2_rmse_of_truth_mean_and_offset():
    y = np.array([0.1, 0.2, 0.3, 0.4])
    assert r2_rmse(y, y) == (1.0, 0.0)
    r2, rmse = r2_rmse(y, np.full_like(y, y.mean()))
    assert r2 == pytest.approx(0.0) and rmse == pytest.approx(y.std())
    r2, rmse = r2_rmse(y, y + 0.1)
    assert rmse == pytest.approx(0.1) and r2 < 1


def test_sharpness_of_a_blurred_image_is_below_one():
    x = torch.zeros(1, 1, 8, 8)
    x[..., :, 4:] = 1.0  # a sharp edge
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1,
                                             count_include_pad=False)
    assert sharpness_ratio(x, x) == 1.0
    assert sharpness_ratio(blurred, x) < 1.0
    assert float(gradient_magnitude(torch.zeros(2, 3, 4, 4)).sum()) == 0.0


def test_budget_mask_keeps_the_share_and_depends_on_the_seed():
    labelled = torch.zeros(3, 10, 10, dtype=torch.bool)
    labelled[:, :5] = True
    m = budget_mask(labelled, 0.2, 0)
    assert int(m.sum()) == 30 and not bool((m & ~labelled).any())
    assert not torch.equal(m, budget_mask(labelled, 0.2, 1))
    assert torch.equal(m, budget_mask(labelled, 0.2, 0))
    assert int(budget_mask(labelled, 0.001, 0).sum()) == 16  # a floor of 16 pixels
    with pytest.raises(ValueError):
        budget_mask(labelled, 0.0, 0)


def test_driver_features_past_and_future_windows():
    drivers = torch.zeros(1, 10, 7)
    drivers[0, 6:, 0] = 10.0  # rain after day 5 only
    t_index, k = torch.tensor([5]), torch.tensor([4])
    past = driver_features(drivers, t_index, None)
    full = driver_features(drivers, t_index, k)
    assert past.shape == (1, 7) and full.shape == (1, 7 + 7 + 2)
    assert float(full[0, -2]) == pytest.approx(0.4)  # 40 mm of rain in (t, t + k], per 100
    assert float(full[0, -1]) == pytest.approx(4 / 60)


def test_forecast_from_state_skill_against_persistence():
    from kgvsf_explore.tasks.data import TaskData

    g = torch.Generator().manual_seed(0)
    sm_t = 0.2 + 0.1 * torch.rand(2, 4, 4, generator=g)
    sm_tk = sm_t - 0.05
    data = TaskData(batch={"k": torch.tensor([5, 40])}, crop=torch.zeros(2, 4, 4),
                    part_pixels=torch.ones(2, 4, 4, dtype=torch.bool), sm_t=sm_t, sm_tk=sm_tk,
                    truth_tk=torch.zeros(2, 7, 4, 4))
    task = TASKS["sm_forecast_from_state"]
    mask = data.part_pixels
    assert task.metrics(sm_t[:, None], data, mask)["skill"] == pytest.approx(0.0)  # persistence
    assert task.metrics(sm_tk[:, None], data, mask)["skill"] == pytest.approx(1.0)
    half = task.metrics((sm_t - 0.025)[:, None], data, mask)
    assert half["skill"] == pytest.approx(0.75)  # half the error: a quarter of its square
    assert set(half) >= {"r2", "rmse", "r2_h15", "r2_h45"}
    assert torch.equal(task.pixel_inputs(data), sm_t[:, None])
    assert TASKS["sm_forecast"].pixel_inputs(data) is None  # the state only where it is known
    # the head learns the change from the state; a zero change is persistence
    assert torch.allclose(task.target(data), torch.full((2, 1, 4, 4), -0.05))
    assert torch.equal(task.prediction(torch.zeros(2, 1, 4, 4), data), sm_t[:, None])


def test_tasks_that_share_samples_draw_the_same_ones():
    a, b = TASKS["sm_forecast"], TASKS["sm_forecast_from_state"]
    assert (a.samples, a.months, a.gap) == (b.samples, b.months, b.gap)
    others = [t.samples for n, t in TASKS.items() if n != "sm_forecast_from_state"]
    assert len(set(others)) == len(others)


# ------------------------------------------------------------------------------------------
# the split and one cell per task on a tiny world


@pytest.fixture(scope="module")
def world():
    from kgvsf_explore.cube.cube import Cube
    from kgvsf_explore.world import make_world

    return Cube(make_world(seed=42, size="tiny")[0].load())


@pytest.fixture(scope="module")
def model():
    from kgvsf_explore.models import KGVSF
    from kgvsf_explore.models.config import PRESETS

    torch.manual_seed(0)
    return KGVSF(PRESETS["tiny"].model).eval()


def test_split_separates_fields_and_years(world):
    split = make_split(world)
    assert split.finetune_years == (2021,) and split.test_years == (2022,)
    a, b = split.pixels("finetune"), split.pixels("test")
    assert not (a & b).any() and (a | b).all()
    fid = world.ds.field_id.values
    assert not set(np.unique(fid[a])) & set(np.unique(fid[b]))  # no field in both
    crop = world.ds.crop_type.values
    assert set(np.unique(crop[a])) == set(np.unique(crop[b]))  # every crop on both sides


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_runs_both_protocols(world, model, name):
    task = TASKS[name]
    split = make_split(world)
    train = task.draw(world, split, "finetune", model.cfg, 4, seed=0)
    test = task.draw(world, split, "test", model.cfg, 3, seed=1)
    years = {int(str(np.datetime64(int(t), "D"))[:4]) for t in test.batch["t"]}
    assert years == {2022} and set(train.info["year_of_sample"]) == {2021}
    cfg = ProtocolConfig(head_steps=3, ft_steps=1, ft_batch=2, hidden=8)
    inputs = frozen_inputs(model, task, train, test)
    a = run_cell(task, model, train, test, protocol="frozen", budget=0.5, seed=0, cfg=cfg,
                 inputs=inputs)
    b = run_cell(task, model, train, test, protocol="frozen", budget=0.5, seed=0, cfg=cfg,
                 inputs=inputs)
    assert json.dumps(a) == json.dumps(b)  # seeded (NaN == NaN as text)
    c = run_cell(task, model, train, test, protocol="finetune", budget=1.0, seed=0, cfg=cfg,
                 inputs=inputs)
    metric = task.primary[0]
    assert np.isfinite(a[metric]) and np.isfinite(c[metric])
    assert c["labelled_pixels"] == int(train.part_pixels.sum())
    if name == "missing_image":
        assert not bool(test.batch["mask"][:, test.gap].any())  # the gap is hidden
    if name == "future_image":
        pred = native_forecast(model, test)
        assert pred.shape == test.truth_tk.shape
    extra = 1 if task.state else 0  # the known state is one more input channel
    plain = frozen_inputs(model, TASKS["sm_forecast"], train, test) if task.state else inputs
    assert inputs.train.shape[1] == plain.train.shape[1] + extra
    if task.state:  # right before the 16 driver features
        assert torch.equal(inputs.test[:, -17], test.sm_t)


@pytest.mark.parametrize("objective,reads_weather", [("kgvsf", True), ("sm-mr", False),
                                                     ("mm-vsf", True)])
def test_forecast_embedding_follows_the_weather_only_if_the_objective_reads_it(
        world, objective, reads_weather):
    from kgvsf_explore.models import KGVSF
    from kgvsf_explore.models.config import PRESETS
    from kgvsf_explore.tasks.protocol import forecast_embedding

    torch.manual_seed(0)
    net = KGVSF(PRESETS["tiny"].model, objective).eval()
    data = TASKS["future_image"].draw(world, make_split(world), "test", net.cfg, 2, seed=3)
    with torch.no_grad():
        base = forecast_embedding(net, data.batch)
        wet = dict(data.batch)
        wet["drivers"] = data.batch["drivers"].clone()
        for j, (t, k) in enumerate(zip(data.batch["t_index"], data.batch["k"])):
            wet["drivers"][j, int(t) + 1:int(t) + int(k) + 1, 0] += 30.0  # rain after t only
        changed = forecast_embedding(net, wet)
    cfg = net.cfg
    assert base.shape == (2, cfg.dim + cfg.pixel_dim, cfg.tile, cfg.tile)
    assert bool((base != changed).any()) == reads_weather
