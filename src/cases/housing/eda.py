"""The homes before any model, and proof that each mask does what it claims: the masked share,
who goes missing by size and by age, and a logistic check of what the mask depends on (MCAR:
nothing; MAR: age and zipcode, not size once those are known; MNAR: size itself)."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from cases.housing.data import MECHANISMS
from cases.lifecycle.contract import EdaResult
from cases.lifecycle.eda import figure, markdown_table


def mask_dependence(h: pd.DataFrame, mech: str) -> dict[str, float]:
    """Logistic regression of the mask on standardised age and standardised log size (hidden
    from the models, known here), and a chi-square test of mask against zipcode."""
    from scipy.stats import chi2_contingency

    miss = h[f"missing_{mech}"].astype(int)
    age = -(h["yr_built"] - h["yr_built"].mean()) / h["yr_built"].std()
    ls = np.log(h["sqft_living"])
    X = np.column_stack([age, (ls - ls.mean()) / ls.std()])
    m = LogisticRegression(C=1e4, max_iter=500).fit(X, miss)
    counts = pd.crosstab(h["zipcode"].astype(str), miss)
    p = float(chi2_contingency(counts)[1]) if counts.shape[1] == 2 else 1.0
    return {"age": float(m.coef_[0][0]), "log_sqft": float(m.coef_[0][1]), "zipcode_p": p}


def profile(tables: dict[str, pd.DataFrame], cfg: Mapping) -> EdaResult:
    h = tables["homes"]
    n = len(h)
    sum_ok = bool(np.allclose(h["sqft_above"] + h["sqft_basement"], h["sqft_living"]))
    size_bin = pd.qcut(h["sqft_living"], 5, labels=[f"Q{i}" for i in range(1, 6)])
    decade = (h["yr_built"] // 20 * 20).astype(int)
    rows, by_size, by_age, dependence = [], {}, {}, {}
    for mech in MECHANISMS:
        miss = h[f"missing_{mech}"].astype(bool)
        zip_rates = miss.groupby(h["zipcode"].astype(str)).mean()
        dependence[mech] = mask_dependence(h, mech)
        by_size[mech] = miss.groupby(size_bin, observed=True).mean()
        by_age[mech] = miss.groupby(decade).mean()
        rows.append({
            "mechanism": mech, "masked": int(miss.sum()), "masked_pct": 100 * float(miss.mean()),
            "mean_sqft_masked": float(h.loc[miss, "sqft_living"].mean()),
            "mean_sqft_kept": float(h.loc[~miss, "sqft_living"].mean()),
            "rate_smallest_fifth": float(by_size[mech].iloc[0]),
            "rate_largest_fifth": float(by_size[mech].iloc[-1]),
            "zip_rate_min": float(zip_rates.min()), "zip_rate_max": float(zip_rates.max()),
            "coef_age": dependence[mech]["age"], "coef_log_sqft": dependence[mech]["log_sqft"],
            "zipcode_p_value": dependence[mech]["zipcode_p"],
        })
    table = pd.DataFrame(rows)
    figures = {}
    for name, data, label in (("mask_by_size", by_size, "true living-area quintile"),
                              ("mask_by_age", by_age, "year built (20-year bins)")):
        fig, ax = figure(f"Share masked by {label}", label, "share masked")
        for mech in MECHANISMS:
            s = data[mech]
            ax.plot(np.arange(len(s)), s.to_numpy(), marker="o", label=mech)
        ax.set_xticks(np.arange(len(s)), [str(i) for i in s.index])
        ax.axhline(float(cfg["data"]["mask"]["rate"]), ls="--", c="grey", lw=1)
        ax.legend(fontsize=8)
        figures[name] = fig
    fig, ax = figure("Price against living area", "sqft_living (log)", "price (log)")
    s = h.sample(min(4000, n), random_state=0)
    ax.scatter(s["sqft_living"], s["price"], s=3, alpha=0.3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    figures["price_by_sqft"] = fig
    dates = pd.to_datetime(h["sale_date"])
    odd = {"bedrooms_10_or_more": int((h["bedrooms"] >= 10).sum()),
           "bedrooms_0": int((h["bedrooms"] == 0).sum()),
           "bathrooms_0": int((h["bathrooms"] == 0).sum()),
           "repeat_sales": int(h["id"].duplicated().sum()),
           "ids_with_leading_zero": int(h["id"].astype(str).str.startswith("0").sum())}
    facts = {"homes": n, "zipcodes": int(h["zipcode"].nunique()),
             "sales_from": str(dates.min().date()), "sales_to": str(dates.max().date()),
             "median_price": float(h["price"].median()),
             "median_sqft": float(h["sqft_living"].median()), "sum_rule_holds": sum_ok,
             "masks": {r["mechanism"]: r for r in rows}, "oddities": odd}
    sections = [
        ("The homes", (
            f"{n:,} sales in {facts['zipcodes']} zipcodes from {facts['sales_from']} to "
            f"{facts['sales_to']}; median price ${facts['median_price']:,.0f}, median living "
            f"area {facts['median_sqft']:,.0f} sqft. `sqft_living = sqft_above + sqft_basement` "
            f"{'holds on every row' if sum_ok else 'does NOT hold on every row'}, so the masks "
            f"hide all three together. Oddities, kept as they are: "
            + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in odd.items())
            + ".\n\n![price by size](eda/price_by_sqft.png)")),
        ("Do the masks do what they claim?", (
            markdown_table(table.round(3))
            + "\n\nThe coefficients come from a logistic regression of the mask on standardised "
              "age and standardised (true) log size; the p-value from a chi-square test of the "
              "mask against zipcode. Completely at random should depend on nothing; at random "
              "given observed columns on age and zipcode, and on size only a little, through "
              "its correlation with age; not at random on size itself, which no observed column "
              "can stand in for."
            + "\n\n![by size](eda/mask_by_size.png)\n\n![by age](eda/mask_by_age.png)")),
    ]
    return EdaResult(sections=sections, figures=figures, facts=facts)
