"""One row per listing: the canonical columns the file had, amenities as indicators (the most
common ones), dates already turned into ages. The test set is a random 20% of hosts, and CV folds
hold out whole hosts too, so one host's listings (and pricing habits) never leak across."""

from __future__ import annotations

import json
from collections import Counter
from typing import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from cases.airbnb.data import TRUTH, slug
from cases.errors import CasebookError
from cases.lifecycle.contract import FeatureTable


def amenity_vocabulary(amenities: pd.Series, top: int) -> list[str]:
    counts = Counter(a for items in amenities for a in items)
    return [a for a, _ in counts.most_common(top)]


WORD = r"\b[a-z][a-z]+\b"  # letters only: no number a host typed (a price) becomes a word
TEXT = "listing_text"  # the listing's text in the frame; only lgbm-tuned reads it (`Words`)
HOST = "host_group"  # the host's code in the frame; only `NeighbourPrice` reads it (its folds)


def _lower(text: pd.Series) -> pd.Series:
    return text.fillna("").astype(str).str.lower()


class Words(BaseEstimator, TransformerMixin):
    """Replaces the text column `column` with `text_length` and one 0/1 column `word_<w>` per
    word among the `top` most common words of the text of the rows it is fitted on (words in at
    least `min_listings` of them). The vocabulary is counted over the training rows only
    (inside a CV fold: that fold's training rows), never over the rows it scores, and never
    from a price."""

    def __init__(self, column: str = TEXT, top: int = 200, min_listings: int = 20):
        self.column = column
        self.top = top
        self.min_listings = min_listings

    def _text(self, X: pd.DataFrame) -> pd.Series:
        if self.column not in X:
            raise CasebookError(f"Words: column {self.column!r} not in the view; lgbm-tuned "
                                f"needs the listing's text (case.features.text.columns)")
        return _lower(X[self.column])

    def fit(self, X: pd.DataFrame, y=None):
        from sklearn.feature_extraction.text import CountVectorizer

        text = self._text(X)
        self.words_: list[str] = []
        if self.top > 0 and len(text) >= self.min_listings and text.str.contains(WORD).any():
            vec = CountVectorizer(max_features=int(self.top), binary=True,
                                  min_df=int(self.min_listings), token_pattern=WORD)
            try:
                vec.fit(text)
                self.words_ = [str(w) for w in vec.get_feature_names_out()]
            except ValueError:  # no word in enough listings
                pass
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        from sklearn.feature_extraction.text import CountVectorizer

        text = self._text(X)
        out = X.drop(columns=[self.column]).assign(text_length=text.str.len().astype(float))
        if not self.words_:
            return out
        vec = CountVectorizer(vocabulary=self.words_, binary=True, token_pattern=WORD,
                              dtype=np.float32)
        words = pd.DataFrame(vec.transform(text).toarray().astype(float), index=X.index,
                             columns=[f"word_{w}" for w in self.words_])
        return pd.concat([out, words], axis=1)


def build(tables: dict[str, pd.DataFrame], cfg: Mapping) -> FeatureTable:
    f = cfg["features"]
    t = tables["listings"].reset_index(drop=True)
    if "amenities" in t:
        t["amenities"] = t["amenities"].map(json.loads)
    declared = [c for v in f["views"].values() for c in v]
    categorical = list(f["categorical"])
    frame = pd.DataFrame(index=t.index)
    for c in declared:
        if c not in t or c in ("amenities", "words"):
            continue
        frame[c] = t[c].astype(str) if c in categorical else t[c].astype(float)
    # the many-level test's candidate columns (analysis only, in no view unless listed there)
    for c in f["many_levels"]:
        if c in t and c not in frame:
            frame[c] = t[c].astype(str)
    amen_cols: list[str] = []
    if "amenities" in t:
        # an amenity's name is not the price: the vocabulary may come from every listing
        vocab = amenity_vocabulary(t["amenities"], int(f["amenities_top"]))
        for a in vocab:
            frame[slug(a)] = t["amenities"].map(lambda items, a=a: a in items).astype(float)
        frame["n_amenities"] = t["amenities"].map(len).astype(float)
        amen_cols = [slug(a) for a in vocab]
    text_cols = [c for c in f["text"]["columns"] if c in t]
    if text_cols:  # the words themselves are chosen inside each fit (`Words`): training rows only
        text = t[text_cols[0]].fillna("").astype(str)
        for c in text_cols[1:]:
            text = text + " " + t[c].fillna("").astype(str)
        frame[TEXT] = text
    frame["log_price"] = np.log(t["price"].astype(float))
    frame["price"] = t["price"].astype(float)
    if TRUTH in t:  # the simulator's truth, for the Bayes floor only (never in a view)
        frame[TRUTH] = t[TRUTH].astype(float)
    hosts = t["host_id"].astype(str) if "host_id" in t else t.index.astype(str)
    codes = pd.Series(pd.factorize(hosts)[0])
    # the host's code rides along with the words (lgbm-tuned's inputs): `NeighbourPrice` holds
    # out whole hosts when it prices a training listing by its neighbours, as CV does
    frame[HOST] = codes.astype(float)
    word_cols = [TEXT, HOST] if text_cols else [HOST]
    groups_of = {"amenities": amen_cols, "words": word_cols}  # a view's token for many columns
    views = {k: [c for c in v if c in frame.columns]
             + [x for g, cols in groups_of.items() if g in v for x in cols]
             for k, v in f["views"].items()}
    unavailable = sorted({c for c in declared if c not in frame.columns and c not in groups_of}
                         | {g for g, cols in groups_of.items() if g in declared and not cols})
    rng = np.random.default_rng(int(f["split_seed"]))
    test_hosts = rng.uniform(size=codes.max() + 1) < float(f["test_share"])
    is_test = test_hosts[codes.to_numpy()]
    split = pd.Series(np.where(is_test, "test", "train"))
    info = {"kind": f"random by host: {float(f['test_share']):.0%} of hosts are the test set",
            "schema": str(tables["schema"]["schema"].iloc[0]) if "schema" in tables else "?",
            "hosts": int(codes.nunique()), "unavailable_features": unavailable,
            "amenities": amen_cols, "text": text_cols}
    return FeatureTable(frame=frame, views=views, targets=["log_price"], split=split,
                        period=None, split_info=info, groups=codes)
