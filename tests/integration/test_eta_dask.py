"""The ETA case on a 2-worker Dask LocalCluster, against the local path on the same trips."""

import numpy as np
import pytest
from omegaconf import OmegaConf

from cases.config import compose
from cases.eta import data as ed
from cases.eta import distributed as dist
from cases.eta.features import build
from cases.eta.tasks import duration_metrics, make_tasks

pytestmark = pytest.mark.slow
TRIPS = 200_000
KNOBS = [f"case.data.world.trips={TRIPS}", "case.train.lgbm.n_estimators=60",
         "case.dask.progress=false"]


@pytest.fixture(scope="module")
def case():
    pytest.importorskip("distributed")
    return OmegaConf.to_container(compose(["case=eta", *KNOBS]).case, resolve=True)


def local_rmsle(case, seed: int) -> float:
    """The local path's LightGBM candidate on the same world, trained on its training weeks."""
    w = case["data"]["world"]
    clean, _ = ed.apply_cleaning(ed.simulate(w), "coords", case["data"]["clean"], w["bbox"])
    ft = build({"trips": clean.assign(schema="coords")}, case)
    cols = ft.views[case["primary"]["view"]]
    lgbm = next(c for c in make_tasks(case, seed)[0].candidates("trip", cols) if c.name == "lgbm")
    train = (ft.split == "train").to_numpy()
    model = lgbm.build().fit(ft.frame.loc[train, cols], ft.frame.loc[train, "trip_duration"])
    y = ft.frame.loc[~train, "trip_duration"].to_numpy(float)
    return duration_metrics(y, model.predict(ft.frame.loc[~train, cols]), None, case)["rmsle"]


def test_dask_matches_the_local_path_and_never_reads_the_test_weeks(case, tmp_path):
    seed = 42
    with dist.cluster(case["dask"]) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        world = dist.write_world(client, case["data"]["world"], case["dask"], tmp_path / "world")
        train_weeks, test_weeks = dist.split_weeks(world["weeks"], case["features"])
        client.run(dist.forget_reads)
        run = dist.DaskETA(client, case, seed)
        run.fit(dist.world_files(world, train_weeks), "coords", TRIPS)
        read = [f for files in client.run(dist.files_read).values() for f in files]
        weeks_read = {int(f.split("week=")[1][:3]) for f in read}
        assert weeks_read and weeks_read <= set(train_weeks)  # fitting read no test week
        test = run.evaluate(dist.read_files(dist.world_files(world, test_weeks)))
        read = [f for files in client.run(dist.files_read).values() for f in files]
        assert {int(f.split("week=")[1][:3]) for f in read} >= set(test_weeks)
        model = run.local_model()
        first_test_week = dist.read_files(dist.world_files(world, test_weeks[:1]))
        rows = run.features(first_test_week, "coords").partitions[0].compute().head(50)
        sample = dist.with_pairs(rows, run.pairs)[run.columns]
    assert type(model).__name__ == "Booster"  # a plain LightGBM model for serving
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run_id = dist.log_model(run, case, uri, {"trips": TRIPS, "workers": 2, "wall_s": 1.0,
                                             "metrics": test})
    import mlflow

    served = mlflow.lightgbm.load_model(f"runs:/{run_id}/model")  # no Dask needed to serve
    np.testing.assert_allclose(served.predict(sample), model.predict(sample))
    inputs = mlflow.artifacts.load_dict(f"runs:/{run_id}/serving_features.json")
    assert len(inputs["cluster_centers"]) == case["features"]["clusters"]
    assert inputs["columns"] == run.columns
    assert len(inputs["pair_stats"]["pairs"]) == len(run.pairs.pair_keys_)
    local = local_rmsle(case, seed)
    assert test["test_trips"] > 0.1 * TRIPS
    assert abs(test["rmsle"] - local) / local < 0.01, (test["rmsle"], local)
    assert test["floor_rmsle"] < test["rmsle"]
    assert np.isfinite(test["ape_p90"])
