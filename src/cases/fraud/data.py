"""Card transactions: a simulator with the truth, or the real ULB file.

Simulator (default): customers with a home and spending habits, merchants in categories, weeks of
transactions, and episodes of unusual activity of three kinds: card testing (bursts of small
online charges), account takeover (large charges at electronics and jewellery merchants, at odd
hours) and spending far from home. Each transaction is fraud with a probability the simulator
knows (`simulate`): a logistic function of what the bank sees and of a hidden per-card leak;
about 0.2% of transactions are fraud. Every fraud has a truth label and the truth columns carry
P(fraud | what the bank sees) (the Bayes floor's); the bank's label is what it learns: a
customer notices and reports fraud only with some probability (`unnoticed_share` is never
reported). Customers answer a text with their own probability. All in `conf/case/fraud.yaml`
(`data.world`).

Real: the ULB credit-card file (`creditcard.csv`: Time, V1..V28, Amount, Class; 284,807 rows,
two days of September 2013) from a local path, or downloaded from OpenML (dataset 1597) with the
MD5 checksum OpenML publishes for it, cached under data/raw/. Duplicated rows are counted and
removed.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from cases.errors import CasebookError
from cases.lifecycle.ingest import Column, Dataset, Schema, read_table, required_path, validate

ULB = Schema((Column("Time", "float", nullable=False, min=0),
              *(Column(f"V{i}", "float", nullable=False) for i in range(1, 29)),
              Column("Amount", "float", nullable=False, min=0),
              Column("Class", "int", nullable=False, min=0, max=1)))
CATEGORIES = ("grocery", "gas", "restaurant", "online", "travel", "electronics", "jewelry",
              "pharmacy", "entertainment")
OPENML_META = "https://www.openml.org/api/v1/json/data/{id}"
OPENML_FILE = "https://www.openml.org/data/v1/download/{file_id}"


def load(data: Mapping, raw_dir: Path) -> Dataset:
    source = data.get("source")
    if source == "simulator":
        tx = simulate(data["world"])
        return Dataset(tables={"transactions": tx}, source=source,
                       description="simulated card transactions, fraud drawn from a known "
                                   "P(fraud | what the bank sees)")
    if source not in ("real", "openml"):
        raise CasebookError(f"case.data.source={source!r}; expected 'simulator', 'real' (a local "
                            f"creditcard.csv) or 'openml' (download dataset 1597)")
    if source == "real":
        path = required_path(data, "the ULB creditcard.csv: Time, V1..V28, Amount, Class")
        raw, origin = read_table(path, "credit-card file"), path
    else:
        path = str(download_openml(int(data["openml_id"]), Path(raw_dir)))
        raw, origin = read_arff(path), path
    tx, dups = read_ulb(raw, origin)
    return Dataset(tables={"transactions": tx,
                           "duplicates": pd.DataFrame({"removed": [dups],
                                                       "rows_in": [len(raw)]})},
                   source="real", description=f"ULB credit-card transactions from "
                                              f"{Path(path).name} (real)", files=[path])


def read_ulb(raw: pd.DataFrame, origin: str) -> tuple[pd.DataFrame, int]:
    frame = validate(raw, ULB, origin)
    dups = frame.duplicated()
    frame = frame[~dups].sort_values("Time", kind="stable").reset_index(drop=True)
    frame = frame.rename(columns={"Time": "time_s", "Amount": "amount", "Class": "is_fraud"})
    frame["is_fraud"] = frame["is_fraud"].astype(int)
    frame["tx_id"] = np.arange(len(frame))
    return frame, int(dups.sum())


# ------------------------------------------------------------------------------------- OpenML
def download_openml(dataset_id: int, raw_dir: Path) -> Path:
    """The dataset's file, checked against the MD5 that OpenML's description of it publishes;
    cached. Offline, a message that says how to provide the file instead."""
    import urllib.error
    import urllib.request

    target = raw_dir / f"openml_{dataset_id}.arff"
    meta_file = raw_dir / f"openml_{dataset_id}.json"
    if target.exists() and meta_file.exists():
        if _md5(target) == json.loads(meta_file.read_text())["md5_checksum"]:
            return target
    offline = (f"cannot download OpenML dataset {dataset_id} ({{err}}). Offline, download "
               f"creditcard.csv (Kaggle mlg-ulb/creditcardfraud) elsewhere and run with "
               f"case.data.source=real case.data.path=/path/creditcard.csv")
    try:
        with urllib.request.urlopen(OPENML_META.format(id=dataset_id), timeout=30) as r:
            desc = json.load(r)["data_set_description"]
        with urllib.request.urlopen(OPENML_FILE.format(file_id=desc["file_id"]),
                                    timeout=300) as r:
            body = r.read()
    except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
        raise CasebookError(offline.format(err=exc)) from None
    got = hashlib.md5(body).hexdigest()
    if got != desc.get("md5_checksum"):
        raise CasebookError(f"OpenML dataset {dataset_id}: checksum mismatch (got {got}, "
                            f"OpenML says {desc.get('md5_checksum')}); not using the download")
    raw_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    tmp.write_bytes(body)
    tmp.replace(target)
    meta_file.write_text(json.dumps({"md5_checksum": got, "file_id": desc["file_id"]}))
    return target


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def read_arff(path: str) -> pd.DataFrame:
    """A plain ARFF file (numeric attributes and quoted nominal ones) as a DataFrame."""
    names, body = [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if s.lower().startswith("@attribute"):
                names.append(s.split()[1].strip("'\""))
            elif s.lower().startswith("@data"):
                body = f.read()
                break
    if body is None or not names:
        raise CasebookError(f"{path}: not an ARFF file (no @attribute/@data sections)")
    frame = pd.read_csv(io.StringIO(body), header=None, names=names, quotechar="'",
                        comment="%")
    return frame


# ----------------------------------------------------------------------------------- simulator
KINDS = ("card_testing", "takeover", "far_from_home")


def sigmoid(z):
    return 1 / (1 + np.exp(-np.asarray(z, dtype=float)))


def logit_terms(seen: pd.DataFrame, lg: Mapping) -> pd.DataFrame:
    """The terms of the log-odds of fraud, one column per weight of `data.world.fraud_logit`,
    from what the bank sees (`seen`: the features `features.observable` builds): a burst of
    small charges, a small online charge, a large charge at an electronics or jewellery
    merchant, the night hours, a merchant far from home, an amount far above the customer's
    usual, several charges in the hour. Hinges (`max(x - knot, 0)`): an ordinary transaction
    scores 0 on each."""
    small = (seen["amount"] < 5).to_numpy(float)
    cat = seen["category"].to_numpy()
    pricey = np.isin(cat, ["electronics", "jewelry"]).astype(float)
    vs_usual = np.nan_to_num(seen["amount_vs_usual"].to_numpy(float), nan=1.0)
    return pd.DataFrame({
        "small_burst": np.minimum(seen["small_amount_burst"].to_numpy(float), 3) * small,
        "online_small": (cat == "online") * small,
        "pricey_big": pricey * np.maximum(np.log(seen["amount"].to_numpy(float)
                                                 / float(lg["big_amount"])), 0),
        "night": (seen["hour"].to_numpy(float) < 5).astype(float),
        "far": np.maximum(seen["distance_km"].to_numpy(float) - float(lg["far_km"]), 0) / 100,
        "vs_usual": np.maximum(np.log(np.maximum(vs_usual, 1e-9) / float(lg["vs_usual_at"])), 0),
        "velocity": np.minimum(seen["tx_1h"].to_numpy(float), 5)}, index=seen.index)


def fraud_logit(seen: pd.DataFrame, lg: Mapping) -> np.ndarray:
    """The part of the log-odds of fraud that what the bank sees fixes, without the intercept:
    the weighted sum of `logit_terms`."""
    terms = logit_terms(seen, lg)
    return terms.to_numpy(float) @ np.array([float(lg[k]) for k in terms.columns])


def p_fraud_seen(z: np.ndarray, intercept: float, leak_share: float,
                 leak_logit: float) -> np.ndarray:
    """P(fraud | what the bank sees): the leak of the card's number, which no feature shows,
    integrated out (a leaked card adds `leak_logit` to the log-odds)."""
    return (leak_share * sigmoid(z + intercept + leak_logit)
            + (1 - leak_share) * sigmoid(z + intercept))


def solve_intercept(z: np.ndarray, rate: float, leak_share: float, leak_logit: float) -> float:
    """The intercept at which the mean P(fraud) over the transactions is `rate` (bisection: the
    mean rises with the intercept)."""
    lo, hi = -60.0, 20.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if p_fraud_seen(z, mid, leak_share, leak_logit).mean() > rate:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def simulate(w: Mapping) -> pd.DataFrame:
    """Transactions whose fraud is drawn, one by one, from a probability the simulator knows.

    Customers shop near home; a small share of the transactions come in episodes of unusual
    activity of three kinds (bursts of small online charges, large electronics and jewellery
    charges at odd hours, spending far from home), on cards drawn at random. Each transaction
    is fraud with probability sigmoid(intercept + `fraud_logit`(what the bank sees) +
    `leak_logit` if the card's number leaked): a leaked card (`leak_share` of the cards) is not
    visible in any transaction, it only makes unusual activity on it likelier to be fraud. The
    intercept is solved so the fraud rate is `fraud_rate`. The truth columns: `true_p`, P(fraud
    | what the bank sees), the leak integrated out (the Bayes floor's prediction: no model sees
    more than the transaction stream), and `true_p_reported`, P(the bank learns of a fraud |
    what it sees) = (1 - `unnoticed_share`) `true_p`, since a victim notices with a probability
    of their own that nothing the bank sees reveals."""
    from cases.fraud.features import observable

    rng = np.random.default_rng(int(w["seed"]))
    nc, nm = int(w["customers"]), int(w["merchants"])
    days = int(w["weeks"]) * 7
    # customers: home, typical amount, activity, how they answer texts
    home = rng.uniform(0, float(w["region_km"]), (nc, 2))
    mean_log_amount = rng.normal(np.log(float(w["median_amount"])), 0.5, nc)
    rate = rng.gamma(2.0, float(w["tx_per_day"]) / 2.0, nc)
    reply_p = np.clip(rng.beta(float(w["reply_beta"][0]), float(w["reply_beta"][1]), nc), 0, 1)
    # merchants: category and place
    cat_p = np.asarray(w["category_share"], dtype=float)
    m_cat = rng.choice(len(CATEGORIES), nm, p=cat_p / cat_p.sum())
    m_loc = rng.uniform(0, float(w["region_km"]), (nm, 2))
    cat_scale = np.array([1.0, 0.8, 0.9, 1.1, 3.0, 2.5, 3.5, 0.6, 1.2])
    # ordinary transactions
    counts = rng.poisson(rate * days)
    cust = np.repeat(np.arange(nc), counts)
    n = len(cust)
    t = rng.uniform(0, days * 86400, n)
    hour_w = np.asarray(w["hour_share"], dtype=float)
    hour = rng.choice(24, n, p=hour_w / hour_w.sum())
    t = np.floor(t / 86400) * 86400 + hour * 3600 + rng.uniform(0, 3600, n)
    # mostly nearby merchants: pick among a few candidates the closest to home
    cand = rng.integers(0, nm, (n, 3))
    d = np.linalg.norm(m_loc[cand] - home[cust][:, None, :], axis=2)
    merch = cand[np.arange(n), d.argmin(axis=1)]
    amount = np.exp(mean_log_amount[cust] + rng.normal(0, 0.6, n)) * cat_scale[m_cat[merch]]
    ordinary = pd.DataFrame({"time_s": t, "customer_id": cust, "merchant_id": merch,
                             "amount": amount, "episode": "none"})
    # episodes of unusual activity on cards drawn at random: fraud or the customer's own
    ep = w["fraud"]
    n_episodes = int(round(float(ep["unusual_share"]) * n / float(ep["tx_per_episode"])))
    cards = rng.choice(nc, n_episodes, replace=False)
    kind = rng.choice(KINDS, n_episodes, p=ep["kind_share"])
    rows = []
    online = np.flatnonzero(m_cat == CATEGORIES.index("online"))
    pricey = np.flatnonzero(np.isin(m_cat, [CATEGORIES.index("electronics"),
                                            CATEGORIES.index("jewelry")]))
    for v, k in zip(cards, kind):
        start = rng.uniform(0, days * 86400 - 86400)
        m = max(1, rng.poisson(float(ep["tx_per_episode"])))
        if k == "card_testing":
            times = start + np.cumsum(rng.exponential(120, m))
            merchants = rng.choice(online, m)
            amounts = rng.uniform(0.5, 5.0, m)
        elif k == "takeover":
            times = start + np.cumsum(rng.exponential(1800, m)) + (rng.uniform() < 0.6) * (
                (2 - (start / 3600) % 24) % 24) * 3600
            merchants = rng.choice(pricey, m)
            amounts = np.exp(rng.normal(np.log(600), 0.6, m))
        else:
            times = start + np.cumsum(rng.exponential(3600, m))
            dist = np.linalg.norm(m_loc - home[v], axis=1)
            merchants = rng.choice(np.argsort(dist)[-50:], m)  # among the 50 farthest
            amounts = np.exp(rng.normal(mean_log_amount[v] + 0.8, 0.7, m))
        for tt, mm, aa in zip(times, merchants, amounts):
            rows.append((tt, v, mm, aa, k))
    unusual = pd.DataFrame(rows, columns=["time_s", "customer_id", "merchant_id", "amount",
                                          "episode"])
    tx = pd.concat([ordinary, unusual], ignore_index=True)
    tx = tx[tx["time_s"] < days * 86400].sort_values("time_s", kind="stable").reset_index(drop=True)
    tx["category"] = np.asarray(CATEGORIES)[m_cat[tx["merchant_id"].to_numpy()]]
    tx["distance_km"] = np.linalg.norm(m_loc[tx["merchant_id"].to_numpy()]
                                       - home[tx["customer_id"].to_numpy()], axis=1)
    tx["amount"] = tx["amount"].round(2)
    # fraud: drawn from what the bank sees and the card's leak, which it does not see
    z = fraud_logit(observable(tx), w["fraud_logit"])
    share, boost = float(w["leak_share"]), float(w["leak_logit"])
    intercept = solve_intercept(z, float(w["fraud_rate"]), share, boost)
    leaked = rng.uniform(size=nc) < share
    card_leaked = leaked[tx["customer_id"].to_numpy()]
    tx["is_fraud"] = (rng.uniform(size=len(tx))
                      < sigmoid(z + intercept + boost * card_leaked)).astype(int)
    tx["fraud_kind"] = np.where(tx["is_fraud"] == 1, np.where(
        tx["episode"] == "none", "ordinary-looking", tx["episode"]), "none")
    tx["card_leaked"] = card_leaked.astype(int)
    tx["true_p"] = p_fraud_seen(z, intercept, share, boost)
    # what the bank learns: a victim notices (and reports) with probability 1 - unnoticed
    unnoticed = float(w["unnoticed_share"])
    noticed = rng.uniform(size=nc) >= unnoticed
    tx["reported"] = (tx["is_fraud"].astype(bool)
                      & noticed[tx["customer_id"].to_numpy()]).astype(int)
    tx["true_p_reported"] = (1 - unnoticed) * tx["true_p"]
    tx["reply_p"] = reply_p[tx["customer_id"].to_numpy()]
    tx["tx_id"] = np.arange(len(tx))
    return tx
