"""The ETA case on Dask (`case.compute=dask`): the same trips, features and LightGBM model as the
local path, for worlds that do not fit in one process (1M to 50M trips and beyond).

- The cluster: a `LocalCluster` the run starts (`case.dask.workers` processes of
  `threads_per_worker` threads, `memory_limit` each), or a running cluster's scheduler given by
  `case.dask.scheduler` or `DASK_SCHEDULER_ADDRESS`; an unreachable address fails within
  `connect_timeout_s`, naming it.
- The world: the simulator (`cases.eta.data.simulate`) run chunk by chunk on the workers,
  `partition_trips` trips a chunk with a seed of its own (chunk 0 takes the world's seed, so the
  first chunk *is* the 1M-trip world), each chunk written as one parquet file per calendar week
  (`week=WWW/chunk-CCCCC.parquet`). Real TLC/Kaggle files are read lazily, one partition a file.
- Cleaning (`data.apply_cleaning`) and features (`features.row_features`) are the local path's
  functions applied partition by partition (`map_partitions`), so the two paths cannot drift.
  The time split is by week folder: fitting reads only the training weeks' files. The k-means
  clusters and the zone-pair statistics (`tasks.PairStats`, exact medians from counts of each
  pair's durations) are fitted on training partitions only.
- Training: LightGBM data-parallel over the workers on its own network (as `lightgbm.dask` sets
  it up), but each worker bins its own training files straight into its Dataset, one file at a
  time (`worker_train`: a `lightgbm.Sequence` a file, bins from one training sample shared by
  all workers), so no worker ever holds its share of the rows unbinned; the test weeks are
  scored afterwards; the model is a plain `lightgbm.Booster`, logged to MLflow as such.

Dask is imported inside the functions: the local path and the other cases never pay for it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cases.errors import CasebookError
from cases.eta import data as ed
from cases.eta.features import city_box, city_centre, fit_clusters, row_features
from cases.eta.tasks import PairStats, duration_metrics, lgbm_settings, pair_of

log = logging.getLogger(__name__)

ENV = "DASK_SCHEDULER_ADDRESS"
TARGET = "trip_duration"
READ_LOG: list[str] = []  # the files this process read (per worker): the split's leak test


# --------------------------------------------------------------------------------------- cluster
@contextlib.contextmanager
def cluster(d: Mapping) -> Iterator:
    """A `distributed.Client`: to `d.scheduler` / DASK_SCHEDULER_ADDRESS when given, else to a
    LocalCluster started here (closed on exit). Prints the dashboard's address."""
    from distributed import Client, LocalCluster

    address = d.get("scheduler") or os.environ.get(ENV) or None
    timeout = float(d["connect_timeout_s"])
    local = None
    if address:
        if "://" not in str(address) or not str(address).split("://", 1)[1]:
            raise CasebookError(f"Dask scheduler address {address!r} (case.dask.scheduler or "
                                f"{ENV}): expected tcp://host:port")
        try:
            client = Client(str(address), timeout=f"{timeout}s")
        except (OSError, TimeoutError) as e:
            raise CasebookError(
                f"cannot reach the Dask scheduler at {address} (from "
                f"{'case.dask.scheduler' if d.get('scheduler') else ENV}) within {timeout:g} s: "
                f"{e}. Start it (dask scheduler), fix the address, or unset both to run on a "
                f"LocalCluster") from None
    else:
        local = LocalCluster(n_workers=int(d["workers"]),
                             threads_per_worker=int(d["threads_per_worker"]),
                             memory_limit=d["memory_limit"], processes=True,
                             host="127.0.0.1", dashboard_address="127.0.0.1:0")
        client = Client(local)
    try:
        link = client.dashboard_link if _has_dashboard(client) else None
        where = address or f"a LocalCluster of {d['workers']} worker(s)"
        print(f"Dask: {where}; dashboard: "
              f"{link or 'off (the dashboard needs the bokeh package)'}", flush=True)
        yield client
    finally:
        client.close()
        if local is not None:
            local.close()


def _has_dashboard(client) -> bool:
    try:
        return "dashboard" in client.scheduler_info().get("services", {})
    except Exception:  # noqa: BLE001 - a scheduler without the info: no link to show
        return False


def _progress(futures, d: Mapping) -> None:
    """A text progress bar for a long step (`case.dask.progress`)."""
    if d.get("progress"):
        from distributed import progress

        progress(futures, notebook=False, interval="5s")
        print(flush=True)


class MemoryPeaks:
    """Each worker's peak resident memory, sampled every `every` seconds while in `with`."""

    def __init__(self, client, every: float = 0.5):
        self.client, self.every = client, every
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()

    def _sample(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                rss = self.client.run(lambda: psutil.Process().memory_info().rss)
                for w, b in rss.items():
                    self.peak[w] = max(self.peak.get(w, 0), int(b))
            except Exception:  # noqa: BLE001 - a busy or restarting worker: next sample
                pass
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def gb(self) -> dict[str, float]:
        return {w: round(b / 1e9, 3) for w, b in sorted(self.peak.items())}


# ----------------------------------------------------------------------------------------- world
def chunk_seed(seed: int, chunk: int) -> int:
    """Chunk 0 takes the world's seed (the first chunk is the smaller world); the others a seed
    of their own drawn from (seed, chunk)."""
    if chunk == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(chunk)]).generate_state(1)[0])


def chunk_sizes(trips: int, per: int) -> list[int]:
    if trips <= 0 or per <= 0:
        raise CasebookError(f"case.data.world.trips={trips} and case.dask.partition_trips={per} "
                            f"must be positive")
    return [min(per, trips - i) for i in range(0, trips, per)]


def world_chunk(w: Mapping, chunk: int, per: int, n: int) -> pd.DataFrame:
    """Chunk `chunk` of the world: `n` trips from the local simulator with the chunk's seed, ids
    numbered after the earlier chunks'."""
    trips = ed.simulate({**w, "trips": n, "seed": chunk_seed(int(w["seed"]), chunk)})
    if chunk:
        trips["id"] = np.char.add("id", (trips["id"].str[2:].astype(np.int64)
                                         + chunk * per).to_numpy().astype(str))
    return trips


def week_of(when: pd.Series, start) -> np.ndarray:
    return ((pd.to_datetime(when) - pd.Timestamp(start)).dt.days // 7).to_numpy()


def _write_chunk(w: Mapping, chunk: int, per: int, n: int, folder: str) -> dict[str, int]:
    trips = world_chunk(w, chunk, per, n)
    rows = {}
    for week, part in trips.groupby(week_of(trips["pickup_datetime"], w["start"]), sort=True):
        path = Path(folder) / f"week={int(week):03d}" / f"chunk-{chunk:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        part.reset_index(drop=True).to_parquet(path, index=False)
        rows[str(path.relative_to(folder))] = len(part)
    return rows


def write_world(client, w: Mapping, d: Mapping, folder: Path) -> dict:
    """Writes the simulated world chunk by chunk on the workers (never whole in one process);
    reuses a folder whose manifest matches the world and the chunk size, extending it with the
    missing chunks when the world grew (chunk i is the same in every world)."""
    per = int(d["partition_trips"])
    sizes = chunk_sizes(int(w["trips"]), per)
    world = {k: v for k, v in w.items() if k != "trips"}
    manifest_path = folder / "world.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    if manifest.get("world") != world or manifest.get("partition_trips") != per:
        manifest = {"world": world, "partition_trips": per, "chunks": {}}
    done = manifest["chunks"]
    todo = [(i, n) for i, n in enumerate(sizes) if done.get(str(i), {}).get("trips") != n]
    if todo:
        log.info("writing %d chunk(s) of the world to %s", len(todo), folder)
        futures = client.map(_write_chunk, [w] * len(todo), [i for i, _ in todo],
                             [per] * len(todo), [n for _, n in todo], [str(folder)] * len(todo),
                             pure=False)
        _progress(futures, d)
        for (i, n), files in zip(todo, client.gather(futures)):
            done[str(i)] = {"trips": n, "files": files}
        manifest_path.parent.mkdir(parents=True, exist_ok=True)
        manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return {"folder": folder, "chunks": [done[str(i)] for i in range(len(sizes))],
            "start": w["start"], "weeks": int(w["weeks"])}


# --------------------------------------------------------------------------------- lazy reading
def read_part(path: str) -> pd.DataFrame:
    READ_LOG.append(str(path))
    return pd.read_parquet(path)


def files_read() -> list[str]:
    """The files this process read (run on each worker with `client.run`)."""
    return list(READ_LOG)


def forget_reads() -> None:
    READ_LOG.clear()


def world_files(world: Mapping, weeks: Sequence[int]) -> list[str]:
    """The world's files of the given weeks, week by week and chunk by chunk within a week: for
    one chunk, the trips in the local path's order (by pickup time)."""
    wanted = {f"week={w:03d}" for w in weeks}
    files = [(name.split("/")[0], i, name) for i, c in enumerate(world["chunks"])
             for name in c["files"] if name.split("/")[0] in wanted]
    return [str(Path(world["folder"]) / name) for _, _, name in sorted(files)]


def read_files(files: Sequence[str], meta: pd.DataFrame | None = None, loader=None):
    import dask.dataframe as dd

    if not files:
        raise CasebookError("no trip files to read for this split")
    loader = loader or read_part
    if meta is None:  # the columns: the driver's look at the first file (not a read)
        meta = (pd.read_parquet(files[0]) if loader is read_part else loader(files[0])).iloc[:0]
    return dd.from_map(loader, list(files), meta=meta, enforce_metadata=False)


def real_trips(files: Sequence[str], zones_path: str | None):
    """Real trip files (`case.data.source=real`) read lazily, one partition a file, each put in
    the local path's shape by its own loader functions."""
    import dask.dataframe as dd

    first, schema = ed.read_trips([files[0]], zones_path)
    zones = ed.read_zones(list(files), zones_path) if schema == "zones" else None

    def load(path: str) -> pd.DataFrame:
        READ_LOG.append(str(path))
        t = ed.read_trips([path], None)[0] if zones is None else _with_zones(path, zones)
        return t[list(first.columns)]

    return dd.from_map(load, list(files), meta=first.iloc[:0], enforce_metadata=False), schema


def _with_zones(path: str, zones: pd.DataFrame) -> pd.DataFrame:
    raw = ed._zones(ed.read_table(path, "trip file"), path)
    return raw.merge(zones, how="left", left_on="PULocationID", right_index=True).merge(
        zones.add_prefix("do_"), how="left", left_on="DOLocationID", right_index=True
    ).sort_values("pickup_datetime", kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------ cleaning and features
def sum_rules(parts: pd.DataFrame) -> dict:
    total = parts.groupby("rule", sort=False)["removed"].sum()
    n = int(total.sum())  # every trip is counted once: under its first broken rule, or kept
    return {r: {"removed": int(v), "share_pct": 100 * v / n if n else 0.0}
            for r, v in total.items()}


def category_codes(frame: pd.DataFrame, categorical: Sequence[str]) -> dict[str, list[str]]:
    """The categories of the text columns among `categorical` (TLC's boroughs), sorted: a
    category's integer code is its place here. Numeric ones (k-means clusters, zone ids) need
    none: their code is their number."""
    codes = {}
    for c in categorical:
        if c in frame and frame[c].notna().any() and pd.to_numeric(
                frame[c], errors="coerce").isna().any():
            codes[c] = sorted(frame[c].dropna().astype(str).unique().tolist())
    return codes


def numeric_codes(col: pd.Series) -> np.ndarray:
    """A category column of numbers as text ("17") as int16 numbers, -1 where missing or not a
    number: parsed once per distinct value (k-means clusters, zone ids: a few hundred), not per
    row (20 times faster on a partition)."""
    codes, values = pd.factorize(col)
    num = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").fillna(-1).to_numpy(
        np.int16)
    return np.where(codes >= 0, num[np.maximum(codes, 0)] if len(num) else -1, -1).astype(
        np.int16)


def feature_part(t: pd.DataFrame, schema: str, f: Mapping, km, categorical: Sequence[str],
                 extras: Sequence[str], centre: tuple[float, float],
                 codes: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """The local path's `row_features` on one partition; floats as float32 and the categories
    as small integers to halve the memory: k-means clusters and zone ids their number, text
    categories (boroughs) their place in `codes` (`category_codes` of the training sample); an
    unseen category is -1, which LightGBM takes as missing."""
    frame = row_features(t, schema, f, km, extras=extras, centre=centre)
    codes = codes or {}
    for c in frame.columns:
        if c in codes:
            frame[c] = pd.Categorical(frame[c].astype(str), categories=list(codes[c])
                                      ).codes.astype(np.int16)
        elif c in categorical:
            frame[c] = numeric_codes(frame[c])
        else:
            frame[c] = frame[c].astype(np.float32)
    frame[TARGET] = t[TARGET].to_numpy(np.float32)
    if ed.TRUTH in t:
        frame[ed.TRUTH] = t[ed.TRUTH].to_numpy(np.float32)
    return frame


def pair_counts(part: pd.DataFrame, pickup: str, dropoff: str) -> pd.DataFrame:
    """How many training trips of each (pickup, dropoff) pair took each duration: enough to get
    the exact medians of the pairs, the pickup zones and all trips without moving the rows."""
    return pd.DataFrame({"a": part[pickup].to_numpy(np.int32), "b": part[dropoff].to_numpy(
        np.int32), "y": part[TARGET].to_numpy(np.float64)}).groupby(
        ["a", "b", "y"], sort=False).size().rename("n").reset_index()


def weighted_median(values: np.ndarray, counts: np.ndarray) -> float:
    """The median of `values` repeated `counts` times (sorted values), as pandas takes it: the
    mean of the two middle ones for an even count."""
    total = int(counts.sum())
    cum = np.cumsum(counts)
    lo = values[np.searchsorted(cum, (total - 1) // 2, side="right")]
    hi = values[np.searchsorted(cum, total // 2, side="right")]
    return float((lo + hi) / 2)


def fit_pair_stats(counts: pd.DataFrame, pickup: str, dropoff: str,
                   smoothing: float) -> PairStats:
    """A fitted `PairStats` (the local path's transformer) from the counts: the medians of
    log(1 + duration), as it takes them inside `on_log`."""
    c = counts.groupby(["a", "b", "y"])["n"].sum().reset_index().sort_values(
        ["a", "b", "y"], kind="stable")
    c["y"] = np.log1p(c["y"].to_numpy())
    ps = PairStats(pickup, dropoff, smoothing=smoothing)
    g = c.groupby("y")["n"].sum().sort_index()
    ps.global_ = weighted_median(g.index.to_numpy(), g.to_numpy())
    origin = c.groupby(["a", "y"])["n"].sum().reset_index()
    ps.origin_ = {str(a): weighted_median(o["y"].to_numpy(), o["n"].to_numpy())
                  for a, o in origin.groupby("a", sort=True)}
    keys, med, cnt = [], [], []
    for (a, b), o in c.groupby(["a", "b"], sort=True):
        keys.append(f"{a}>{b}")
        med.append(weighted_median(o["y"].to_numpy(), o["n"].to_numpy()))
        cnt.append(float(o["n"].sum()))
    ps.pair_keys_, ps.pair_median_, ps.pair_count_ = keys, np.asarray(med), np.asarray(cnt)
    return ps


def with_pairs(part: pd.DataFrame, ps: PairStats | None) -> pd.DataFrame:
    if ps is None:
        return part
    out = ps.transform(part)
    out["pair_median"] = out["pair_median"].astype(np.float32)
    out["pair_trips"] = out["pair_trips"].astype(np.float32)
    return out


def score_part(part: pd.DataFrame, model, prep: Mapping, keep: Sequence[str],
               threads: int) -> pd.DataFrame:
    """One test partition's truth and the model's log-duration prediction."""
    X = with_pairs(part, prep["pairs"])[list(prep["columns"])].to_numpy(np.float32)
    pred = model.predict(X, num_threads=threads) if len(X) else np.zeros(0)
    return part[list(keep)].assign(pred=pred.astype(np.float32))


def split_weeks(weeks: int, f: Mapping) -> tuple[list[int], list[int]]:
    """Training and test weeks of the world: the last `test_weeks` are the test set (the local
    path's rule; its weeks count from the first trip, these from the world's start day)."""
    n_test = int(f["test_weeks"])
    if weeks < 3 * n_test:
        raise CasebookError(f"the world spans {weeks} week(s): the Dask path needs at least "
                            f"3 x case.features.test_weeks ({3 * n_test}) to split by week")
    return list(range(weeks - n_test)), list(range(weeks - n_test, weeks))


# ------------------------------------------------------------------------------------------ run
class DaskETA:
    """One fit and evaluation on Dask: trips of some files in, metrics and a LightGBM model out."""

    def __init__(self, client, cfg: Mapping, seed: int):
        self.client, self.cfg, self.seed = client, cfg, int(seed)
        self.d, self.f = cfg["dask"], cfg["features"]
        self.view = list(self.f["views"][cfg["primary"]["view"]])
        self.codes: dict[str, list[str]] = {}

    def bbox(self) -> Mapping:
        return city_box(self.cfg["data"])

    def prep(self) -> dict:
        """What turns one partition of raw trips into the model's rows (after `fit` chose the
        clusters, codes and pair statistics): shipped to the workers whole."""
        return {"schema": self.schema, "clean": self.cfg["data"]["clean"], "bbox": self.bbox(),
                "f": self.f, "km": self.km, "categorical": list(self.f["categorical"]),
                "extras": self.extras, "centre": city_centre(self.cfg["data"]),
                "codes": self.codes, "pairs": getattr(self, "pairs", None),
                "columns": getattr(self, "columns", None)}

    def features(self, raw, schema: str):
        """Cleaned trips' features, partition by partition (after `fit` chose the clusters)."""
        return raw.map_partitions(features_of, self.prep(), meta=self.meta)

    def fit(self, files: Sequence[str], schema: str, train_rows: int,
            loader=None) -> dict:
        """Clusters, category codes, pair statistics and LightGBM on the training files only
        (`loader` reads one; default the world's parquet). Three passes over the files: (1) the
        cleaning counts, each file's clean trips and a strided sample of them (k-means, codes,
        LightGBM's bins); (2) the zone-pair duration counts; (3) each worker bins its own files
        into its LightGBM Dataset and the workers train data-parallel."""
        loader = loader or read_part
        files = list(files)
        timings = {}
        t0 = time.perf_counter()
        stride = max(1, math.ceil(train_rows / int(self.d["cluster_sample"])))
        futures = self.client.map(scan_part, files, loader=loader, schema=schema,
                                  clean=self.cfg["data"]["clean"], bbox=self.bbox(),
                                  stride=stride, pure=False)
        _progress(futures, self.d)
        scans = self.client.gather(futures)
        del futures
        self.cleaning = sum_rules(pd.concat([s["rules"] for s in scans]))
        self.kept = [s["kept"] for s in scans]
        sample = pd.concat([s["sample"] for s in scans], ignore_index=True)
        del scans
        self.km, self.schema = None, schema
        if schema == "coords":
            pts = np.vstack([sample[["pickup_latitude", "pickup_longitude"]].to_numpy(float),
                             sample[["dropoff_latitude", "dropoff_longitude"]].to_numpy(float)])
            self.km = fit_clusters(pts, int(self.f["clusters"]),
                                   int(self.cfg["data"].get("world", {}).get("seed", 0)))
        self.extras = [c for c in ("passenger_count", "vendor_id", "precip_mm")
                       if c in sample.columns]
        self.codes = category_codes(row_features(
            sample, schema, self.f, self.km, extras=self.extras,
            centre=city_centre(self.cfg["data"])), list(self.f["categorical"]))
        sample_feats = features_of(sample, self.prep(), clean=False)
        self.meta = sample_feats.iloc[:0]
        timings["clean_and_clusters_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        cols = [c for c in self.view if c in sample_feats.columns]
        pair = pair_of(cols)
        self.pairs = None
        if pair:
            # summed in a tree (a partition's counts are nearly as long as its trips: gathered
            # whole, 30M trips' counts overflowed a 4 GB worker)
            feats = self.features(read_files(files, loader=loader), schema)
            counts = feats.map_partitions(pair_counts, *pair, meta={
                "a": "i4", "b": "i4", "y": "f8", "n": "i8"}).groupby(
                ["a", "b", "y"]).n.sum().reset_index().compute()
            self.pairs = fit_pair_stats(counts, *pair, float(self.cfg["train"]["pair_smoothing"]))
        timings["pair_stats_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.columns = cols + (["pair_median", "pair_trips"] if pair else [])
        self.categorical = [c for c in self.f["categorical"] if c in cols]
        ref_X, ref_y = design_rows(sample_feats, self.prep())
        self.model = train_lightgbm(self.client, files, self.kept, loader, self.prep(),
                                    (ref_X, ref_y), self.booster_params(), self.rounds(),
                                    self.categorical, self.d)
        timings["lightgbm_s"] = time.perf_counter() - t0
        return timings

    def booster_params(self) -> dict:
        """The case's LightGBM settings as the Booster takes them (the sklearn wrapper's own
        translation, so the local and the Dask models share every parameter)."""
        import lightgbm as lgb

        from cases.lifecycle.models import lgbm_params

        params = lgbm_params(self.seed, lgbm_settings(self.cfg))
        params["n_jobs"] = int(self.d["threads_per_worker"])  # a worker's threads
        return lgb.LGBMRegressor(objective="regression", **params)._process_params("fit")

    def rounds(self) -> int:
        return int(lgbm_settings(self.cfg).get("n_estimators", 100))

    def evaluate(self, test_raw) -> dict:
        """Test metrics from the test partitions (read only now): each partition scored by the
        plain LightGBM model, then the local path's metric function on the gathered truth and
        predictions (a few float32 columns)."""
        feats = self.features(test_raw, self.schema)
        cols = [TARGET] + ([ed.TRUTH] if ed.TRUTH in feats.columns else [])
        meta = feats._meta[cols].assign(pred=np.float32(0))
        truth = feats.map_partitions(score_part, self.model, self.prep(), cols,
                                     int(self.d["threads_per_worker"]), meta=meta).compute()
        pred = np.expm1(truth["pred"].to_numpy(float))
        y = truth[TARGET].to_numpy(float)
        out = {"test_trips": len(y), "mae": float(np.mean(np.abs(pred - y))),
               **duration_metrics(y, pred, None, self.cfg)}
        if ed.TRUTH in truth:
            out["floor_rmsle"] = duration_metrics(y, truth[ed.TRUTH].to_numpy(float), None,
                                                  self.cfg)["rmsle"]
        return out

    def local_model(self):
        """The fitted model: a plain `lightgbm.Booster` (serving needs no Dask)."""
        return self.model


def scan_part(path: str, loader, schema: str, clean: Mapping, bbox: Mapping,
              stride: int) -> dict:
    """Pass 1 over one training file: the cleaning rules' counts, the clean trips' count and
    every `stride`-th clean trip (the sample k-means, the category codes and LightGBM's bins
    are fitted on)."""
    kept, rules = ed.apply_cleaning(loader(path), schema, clean, bbox)
    return {"rules": rules[["rule", "removed"]], "kept": len(kept),
            "sample": kept.iloc[::stride].reset_index(drop=True)}


def features_of(raw: pd.DataFrame, prep: Mapping, clean: bool = True) -> pd.DataFrame:
    """One partition's features (`feature_part`) from its raw trips, cleaned first."""
    t = ed.apply_cleaning(raw, prep["schema"], prep["clean"], prep["bbox"])[0] if clean else raw
    return feature_part(t, prep["schema"], prep["f"], prep["km"], prep["categorical"],
                        prep["extras"], prep["centre"], prep["codes"])


def design_rows(feats: pd.DataFrame, prep: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """The model's float32 rows (`prep['columns']`, the pair statistics added) and log target."""
    X = with_pairs(feats, prep["pairs"])[list(prep["columns"])].to_numpy(np.float32)
    return X, np.log1p(feats[TARGET].to_numpy(np.float32))


def balance(rows: Sequence[int], workers: int) -> list[list[int]]:
    """Files (by index) to workers, each file to the worker with the fewest rows so far: the
    same split for the same files, whatever the workers' addresses."""
    load, out = [0] * workers, [[] for _ in range(workers)]
    for i, n in enumerate(rows):
        w = min(range(workers), key=lambda k: (load[k], k))
        out[w].append(i)
        load[w] += int(n)
    return out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def train_lightgbm(client, files: Sequence[str], kept: Sequence[int], loader, prep: Mapping,
                   ref: tuple[np.ndarray, np.ndarray], params: Mapping, rounds: int,
                   categorical: Sequence[str], d: Mapping):
    """LightGBM data-parallel over the workers (its own network, as `lightgbm.dask` sets it up),
    each worker binning its own files straight into its Dataset, one file at a time, so a
    worker never holds more than one file's rows unbinned (`lightgbm.dask` concatenates all of
    a worker's partitions as float64 first: 30M trips overflowed 4 GB). The bins come from the
    same training sample on every worker. Returns the trained `lightgbm.Booster`."""
    from urllib.parse import urlparse

    import lightgbm as lgb

    workers = sorted(client.scheduler_info()["workers"])
    shares = [s for s in balance(kept, len(workers)) if s]
    workers = workers[:len(shares)]
    ports = client.run(_free_port, workers=workers)
    machines = ",".join(f"{urlparse(w).hostname}:{ports[w]}" for w in workers)
    ref = client.scatter(ref, broadcast=True, hash=False)  # the bin sample, sent once
    futures = [client.submit(
        worker_train, [files[i] for i in share], [int(kept[i]) for i in share], loader, prep,
        ref, dict(params), int(rounds), list(categorical),
        {"machines": machines, "local_listen_port": ports[w], "num_machines": len(workers),
         "time_out": 120, "tree_learner": "data" if len(workers) > 1 else "serial"},
        workers=[w], allow_other_workers=False, pure=False)
        for w, share in zip(workers, shares)]
    _progress(futures, d)
    models = client.gather(futures)
    return lgb.Booster(model_str=models[0])


def worker_train(files: Sequence[str], kept: Sequence[int], loader, prep: Mapping,
                 ref: tuple[np.ndarray, np.ndarray], params: dict, rounds: int,
                 categorical: Sequence[str], network: Mapping) -> str:
    """On one worker: its files binned into a LightGBM Dataset (a `lightgbm.Sequence` a file,
    each file read, cleaned and featured when LightGBM asks for its rows, then dropped), then
    its share of the data-parallel training. Returns the model as text."""
    import lightgbm as lgb

    columns = list(prep["columns"])
    label = np.empty(sum(kept), np.float32)

    class FileRows(lgb.Sequence):
        def __init__(self, path: str, start: int, n: int):
            self.path, self.start, self.n = path, start, n
            self.batch_size = max(n, 1)  # the whole file in one push

        def __len__(self) -> int:
            return self.n

        def __getitem__(self, idx):
            X, y = design_rows(features_of(loader(self.path), prep), prep)
            if len(y) != self.n:
                raise CasebookError(f"{self.path}: {len(y)} clean trips on the second read, "
                                    f"{self.n} on the first (the file changed during the run?)")
            label[self.start:self.start + self.n] = y
            return X[idx]

    starts = np.concatenate([[0], np.cumsum(kept)[:-1]]).astype(int)
    seqs = [FileRows(f, int(s), int(n)) for f, s, n in zip(files, starts, kept)]
    common = {"feature_name": columns, "categorical_feature": list(categorical),
              "params": params, "free_raw_data": True}
    reference = lgb.Dataset(ref[0], label=ref[1], **common)
    data = lgb.Dataset(seqs, reference=reference, **common).construct()
    data.set_label(label)
    del seqs
    booster = lgb.train({**params, **network}, data, num_boost_round=rounds)
    try:
        return booster.model_to_string()
    finally:
        booster.free_network()


def run_world(client, cfg: Mapping, seed: int, trips: int, world: Mapping | None = None,
              test_chunks: int | None = None) -> dict:
    """Fit on the first `trips` trips' training weeks (whole chunks of the written world) and
    score on the test weeks of the first `test_chunks` chunks (default: the same chunks)."""
    d, f = cfg["dask"], cfg["features"]
    per = int(d["partition_trips"])
    n_chunks = len(chunk_sizes(trips, per))
    sub = {**world, "chunks": world["chunks"][:n_chunks]}
    train_weeks, test_weeks = split_weeks(int(world["weeks"]), f)
    train_files = world_files(sub, train_weeks)
    test_files = world_files({**world, "chunks": world["chunks"][:test_chunks or n_chunks]},
                             test_weeks)
    rows = {str(Path(world["folder"]) / k): v for c in world["chunks"] for k, v in
            c["files"].items()}
    run = DaskETA(client, cfg, seed)
    start = time.perf_counter()
    with MemoryPeaks(client) as mem:
        timings = run.fit(train_files, "coords", sum(rows[x] for x in train_files))
        t0 = time.perf_counter()
        metrics = run.evaluate(read_files(test_files))
        timings["evaluate_s"] = time.perf_counter() - t0
    wall = time.perf_counter() - start
    n_workers = len(client.scheduler_info()["workers"])
    seen = sum(rows[x] for x in train_files + test_files)
    return {"trips": int(trips), "train_trips_raw": sum(rows[x] for x in train_files),
            "train_weeks": [train_weeks[0], train_weeks[-1]],
            "test_weeks": [test_weeks[0], test_weeks[-1]], "metrics": metrics,
            "cleaning": run.cleaning, "wall_s": round(wall, 1),
            "timings_s": {k: round(v, 1) for k, v in timings.items()},
            "peak_worker_gb": mem.gb(), "workers": n_workers,
            "rows_per_s_per_worker": round(seen / wall / max(n_workers, 1)),
            "_run": run}


def per_doubling(curve: Sequence[Mapping]) -> list[dict]:
    """The RMSLE gained per doubling of the data between consecutive sizes (in % of the smaller
    size's RMSLE, per log2 of the size ratio)."""
    out = []
    for a, b in zip(curve, curve[1:]):
        ra, rb = a["metrics"]["rmsle"], b["metrics"]["rmsle"]
        doublings = math.log2(b["trips"] / a["trips"])
        out.append({"from": a["trips"], "to": b["trips"], "rmsle_gain_pct": 100 * (ra - rb) / ra,
                    "per_doubling_pct": 100 * (ra - rb) / ra / doublings,
                    "extra_wall_s": b["wall_s"] - a["wall_s"],
                    "wall_s_per_extra_million": (b["wall_s"] - a["wall_s"])
                    / ((b["trips"] - a["trips"]) / 1e6)})
    return out


def log_model(run: DaskETA, cfg: Mapping, uri: str, result: Mapping) -> str:
    """The model to MLflow as a plain LightGBM model, with what serving needs to make its
    inputs beside it (`serving_features.json`: the k-means centres of the pickup/dropoff
    clusters and the zone-pair statistics, `tasks.PairStats`'s fitted state) and the metrics."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(f"casebook-{cfg['name']}-dask")
    with mlflow.start_run(run_name=f"dask-{result['trips']}") as r:
        mlflow.log_params({"trips": result["trips"], "compute": "dask",
                           "workers": result["workers"], "columns": ",".join(run.columns)})
        mlflow.log_metrics({f"test_{k}": v for k, v in result["metrics"].items()
                            if isinstance(v, (int, float))} | {"wall_s": result["wall_s"]})
        serving = {"columns": run.columns, "categorical": run.categorical,
                   "cluster_centers": run.km.cluster_centers_.tolist() if run.km else None,
                   "category_codes": run.codes}
        if run.pairs is not None:
            serving["pair_stats"] = {
                "pickup": run.pairs.pickup, "dropoff": run.pairs.dropoff,
                "smoothing": run.pairs.smoothing, "global": run.pairs.global_,
                "origin": run.pairs.origin_, "pairs": dict(zip(
                    run.pairs.pair_keys_, zip(run.pairs.pair_median_.tolist(),
                                              run.pairs.pair_count_.tolist())))}
        mlflow.log_dict(serving, "serving_features.json")
        mlflow.lightgbm.log_model(run.local_model(), name="model")
        return r.info.run_id


def learning_curve(cfg: Mapping, seed: int, folder: Path, sizes: Sequence[int],
                   client=None, uri: str | None = None,
                   log_sizes: Sequence[int] | None = None) -> dict:
    """Fit each size on the first `size` trips of one world and score all on the same test
    trips: the test weeks of the world's first `case.dask.test_chunks` chunks."""
    d = cfg["dask"]
    sizes = sorted(int(s) for s in sizes)
    per = int(d["partition_trips"])
    odd = [s for s in sizes[:-1] if s % per]
    if odd:
        raise CasebookError(f"learning-curve sizes {odd} are not multiples of "
                            f"case.dask.partition_trips={per}: each size is whole chunks of "
                            f"the world")
    w = {**cfg["data"]["world"], "trips": sizes[-1]}
    with contextlib.ExitStack() as stack:
        client = client or stack.enter_context(cluster(d))
        t0 = time.perf_counter()
        world = write_world(client, w, d, folder)
        write_s = time.perf_counter() - t0
        test_chunks = min(int(d["test_chunks"]), len(world["chunks"]))
        curve = []
        for n in sizes:
            print(f"Dask ETA: {n:,} trips ...", flush=True)
            res = run_world(client, cfg, seed, n, world, test_chunks)
            run = res.pop("_run")
            if uri and (log_sizes is None or n in log_sizes):
                res["mlflow_run_id"] = log_model(run, cfg, uri, res)
            curve.append(res)
            print(json.dumps(res), flush=True)
    return {"world_write_s": round(write_s, 1), "sizes": sizes, "curve": curve,
            "per_doubling": per_doubling(curve)}


# ----------------------------------------------------------------------------- the case, whole
def run_case(cfg) -> dict:
    """`python -m cases all case=eta case.compute=dask`: the world written partition by
    partition, the learning curve up to the whole world on the cluster (every size scored on the
    same test weeks), the whole world's model logged to MLflow as a plain LightGBM model, and
    reports/eta/dask.md + dask.json saying what more data bought and what it cost."""
    from omegaconf import OmegaConf

    from cases.lifecycle.io import outputs
    from cases.stages import common

    case = OmegaConf.to_container(cfg.case, resolve=True)
    if case["data"]["source"] != "simulator":
        raise CasebookError("case.compute=dask runs the simulated world (case.data.source="
                            "simulator); real TLC files are read lazily by "
                            "cases.eta.distributed.real_trips but not yet run whole")
    trips = int(case["data"]["world"]["trips"])
    sizes = sorted({int(s) for s in case["dask"]["learning_curve"] if int(s) < trips
                    and int(s) % int(case["dask"]["partition_trips"]) == 0} | {trips})
    result = learning_curve(case, int(cfg.seed), Path(cfg.paths.data) / "dask_world", sizes,
                            uri=common.uri(cfg), log_sizes=[trips])
    result["story"] = story(result, case)
    reports = Path(cfg.paths.reports)
    with outputs() as out:
        out.write_json(reports / "dask.json", result)
        out.write_text(reports / "dask.md", report_md(result, case))
    print(result["story"], flush=True)
    return result


def story(result: Mapping, case: Mapping) -> str:
    """What more data bought, in the run's own numbers."""
    from cases.eta.analysis import plateau

    curve = result["curve"]
    first, last = curve[0], curve[-1]
    if len(curve) == 1:
        return (f"{last['trips']:,} trips on Dask: test RMSLE {last['metrics']['rmsle']:.4f} "
                f"in {last['wall_s']:.0f} s (one size: no curve)")
    gain = float(case["analysis"]["plateau_gain_pct"])
    frame = pd.DataFrame({"model": "lgbm", "trips": [r["trips"] for r in curve],
                          "val_rmsle": [r["metrics"]["rmsle"] for r in curve]})
    pl = plateau(frame, "lgbm", gain)
    total = 100 * (first["metrics"]["rmsle"] - last["metrics"]["rmsle"]) / first["metrics"]["rmsle"]
    stops = (f"each doubling past {pl['stops_paying_at']:,} trips gains under {gain:g}% RMSLE"
             if pl["stops_paying_at"] else f"the last doubling still gains {gain:g}% or more")
    floor = last["metrics"].get("floor_rmsle")
    to_floor = (f"; the Bayes floor is {floor:.4f}, so {last['metrics']['rmsle'] - floor:.4f} "
                f"RMSLE is left for any model" if floor is not None else "")
    peak = max((v for r in curve for v in r["peak_worker_gb"].values()), default=0.0)
    return (f"From {first['trips']:,} to {last['trips']:,} trips the test RMSLE goes from "
            f"{first['metrics']['rmsle']:.4f} to {last['metrics']['rmsle']:.4f} "
            f"({total:.2f}% better); {stops}{to_floor}. The cost: {last['wall_s']:.0f} s for "
            f"the largest size against {first['wall_s']:.0f} s for the smallest on "
            f"{last['workers']} worker(s), peak worker memory {peak:.2f} GB.")


def report_md(result: Mapping, case: Mapping) -> str:
    rows = ["| trips | test RMSLE | MAE s | wall s | rows/s per worker | peak GB per worker |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in result["curve"]:
        m = r["metrics"]
        rows.append(f"| {r['trips']:,} | {m['rmsle']:.4f} | {m['mae']:.1f} | {r['wall_s']:.0f} "
                    f"| {r['rows_per_s_per_worker']:,} | "
                    f"{', '.join(f'{v:.2f}' for v in r['peak_worker_gb'].values())} |")
    gains = ["| from | to | RMSLE gain | per doubling | extra wall s | s per extra million |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"] + [
        f"| {g['from']:,} | {g['to']:,} | {g['rmsle_gain_pct']:.2f}% | "
        f"{g['per_doubling_pct']:.2f}% | {g['extra_wall_s']:+.0f} | "
        f"{g['wall_s_per_extra_million']:.0f} |"
        for g in result["per_doubling"]]
    d, lg = case["dask"], case["train"]["lgbm"]
    setup = (f"LightGBM: {lg['n_estimators']} trees, learning rate {lg['learning_rate']:g}, "
             f"{lg['num_leaves']} leaves (case.train.lgbm), data-parallel on {d['workers']} "
             f"worker(s) x {d['threads_per_worker']} thread(s), {d['memory_limit']} each "
             f"(case.dask; peak memory measured, not estimated: each worker's resident memory "
             f"sampled every 0.5 s).")
    return "\n".join([
        f"# {case['title']}: past one machine (Dask)", "",
        result["story"], "",
        f"Every size is fitted on the training weeks of the first trips of one world (written "
        f"in chunks of {int(d['partition_trips']):,} trips in {result['world_write_s']:.0f} s) "
        f"and scored on the same test weeks ({result['curve'][-1]['metrics']['test_trips']:,} "
        f"trips).", "", setup, "", *rows, "", *gains, ""])
