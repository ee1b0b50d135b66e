"""The claims check: what a report says must be what the run measured.

Three rules, checked on the markdown a report stage is about to write (and on the card):

1. **Every figure traces.** A number in the text (`0.2606`, `+3.51%`, `$13.0K`, `1,989`, `2 h`)
   must equal, after its own rounding, a value stored in the run's outputs (metrics, selection,
   analysis, EDA, ingest, features json...) or in the case's config. A share may be printed
   times 100 with a `%`, a `K`/`M` suffix divides by a thousand/million, hours and minutes may
   come from minutes or seconds. Differences and ratios are not computed here: a story that
   prints one must find it stored (the analysis writes the derived facts it quotes).
2. **The model a rollout ships is the champion.** "Ship `X`" (or "deploy", "which to ship")
   must name the candidate `serving.json` registered as a task's champion, unless the sentence
   says why not ("not registered", "gate failed").
3. **Comparative words agree with the paired interval.** A clause naming two models (in
   backticks, or the word "baseline") and saying "beats"/"better"/"worse"/"differs" needs a
   paired bootstrap interval that excludes zero in that direction; one saying "within noise"
   needs an interval that covers zero. "Differs" between two figures that print the same is a
   contradiction whatever the models.

Text is masked before figures are read: code spans (model names, config keys, hashes), link
targets, list markers and strings quoted verbatim from the outputs or the config (the question,
a data description, an example text message).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cases.errors import CasebookError
from cases.lifecycle.evaluate import greater_is_better

# ---------------------------------------------------------------------------- paired intervals

def paired(entry: Mapping, a: str, b: str, metric: str) -> dict | None:
    """The paired bootstrap interval of `a` − `b` on `metric` in one task/view entry of
    metrics.json (`a`, `b`: candidate names or "baseline"), as {diff, lo, hi, within_noise},
    or None when the run stored none for that pair (only pairs with the selected model or the
    baseline are stored)."""
    p = entry.get("paired") or {}
    sel = entry.get("selected")
    if a == b:
        return None

    def get(cand: str, ref: str):
        return ((p.get(cand) or {}).get(ref) or {}).get(metric)

    sign, x = 1.0, None
    if b == "baseline":
        x = get(a, "vs_baseline")
    elif a == "baseline":
        sign, x = -1.0, get(b, "vs_baseline")
    elif b == sel:
        x = get(a, "vs_selected")
    elif a == sel:
        sign, x = -1.0, get(b, "vs_selected")
    if not x:
        return None
    lo, hi = sorted((sign * float(x["lo"]), sign * float(x["hi"])))
    return {"diff": sign * float(x["diff"]), "lo": lo, "hi": hi,
            "within_noise": bool(x.get("within_noise", lo <= 0 <= hi))}


def verdict(entry: Mapping, a: str, b: str, metric: str) -> str | None:
    """"better", "worse" (`a` against `b`) or "within noise", from the paired interval; None
    when the run stored no interval for the pair."""
    x = paired(entry, a, b, metric)
    if x is None:
        return None
    if x["within_noise"]:
        return "within noise"
    return "better" if (x["diff"] > 0) == greater_is_better(metric) else "worse"


# ------------------------------------------------------------------------------------ figures

_FIGURE = re.compile(
    r"(?<![\w.$])(?P<sign>[-+\u2212])?(?P<dollar>\$)?"
    r"(?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.(?P<frac>\d+))?"
    r"(?:e(?P<exp>[-+]?\d+))?(?P<suffix>[KM](?![A-Za-z]))?(?P<pct>%)?(?![\w])")
_UNIT = re.compile(r"\s?(?P<unit>[A-Za-z]+)")
# unit word after a figure -> scales a stored value may be shown at (minutes as hours, ...)
_UNIT_SCALES = {"h": (1 / 60, 1 / 3600), "hour": (1 / 60, 1 / 3600), "hours": (1 / 60, 1 / 3600),
                "min": (1 / 60,), "minutes": (1 / 60,), "ms": (1000.0,)}


@dataclass(frozen=True)
class Figure:
    """One number as printed: its value, the half-unit of its last digit, and its marks."""

    text: str
    value: float
    tolerance: float
    signed: bool
    dollars: bool
    percent: bool
    suffix: str
    unit: str
    start: int

    def is_count(self) -> bool:
        return (self.tolerance == 0.5 and abs(self.value) < 100
                and not (self.signed or self.percent or self.suffix or self.dollars))

    def scales(self) -> tuple[float, ...]:
        out = [1.0]
        if self.percent:
            out.append(100.0)
        if self.suffix == "K":
            out.append(1e-3)
        if self.suffix == "M":
            out.append(1e-6)
        out += _UNIT_SCALES.get(self.unit.lower(), ())
        return tuple(out)


def figures(text: str) -> list[Figure]:
    """The numbers in already-masked text (see `mask`)."""
    out = []
    for m in _FIGURE.finditer(text):
        frac, exp = m["frac"] or "", int(m["exp"] or 0)
        value = float(m["int"].replace(",", "") + (f".{frac}" if frac else "")) * 10.0 ** exp
        if m["sign"] in ("-", "\u2212"):
            value = -value
        unit = _UNIT.match(text, m.end())
        out.append(Figure(
            text=m.group(0), value=value, tolerance=0.5 * 10.0 ** (exp - len(frac)),
            signed=bool(m["sign"]), dollars=bool(m["dollar"]), percent=bool(m["pct"]),
            suffix=m["suffix"] or "",
            unit=unit["unit"] if unit and not m["pct"] else "", start=m.start()))
    return out


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


_CODE = re.compile(r"`[^`\n]*`")
_LINK_TARGET = re.compile(r"\]\([^)\n]*\)")
_LIST_MARKER = re.compile(r"^(\s*)\d+\.(?=\s)", re.MULTILINE)


def mask(text: str, verbatim: Iterable[str] = ()) -> str:
    """The text with what is not a claim blanked out (same length, so positions hold): code
    spans, link targets, ordered-list markers and the given verbatim strings (the run's and the
    config's own text, e.g. the question or an example message)."""
    for pattern in (_CODE, _LINK_TARGET):
        text = pattern.sub(lambda m: " " * len(m.group(0)), text)
    text = _LIST_MARKER.sub(lambda m: m.group(1) + " " * (len(m.group(0)) - len(m.group(1))),
                            text)
    for s in sorted(set(verbatim), key=len, reverse=True):
        start = text.find(s)
        while start >= 0:
            text = _blank(text, start, start + len(s))
            start = text.find(s, start + len(s))
    return text


# ------------------------------------------------------------------------------------ sources

class Sources:
    """The values a report may quote: every finite number in the run's outputs and the config,
    sorted for lookup, and their strings with a letter and a digit (quoted verbatim, masked)."""

    def __init__(self, *objects):
        nums: list[float] = []
        self.strings: set[str] = set()
        for obj in objects:
            _walk(obj, nums, self.strings)
        self.values = sorted(set(nums))

    def has(self, target: float, tolerance: float) -> bool:
        slack = tolerance * (1 + 1e-9) + 1e-12 * abs(target)
        i = bisect.bisect_left(self.values, target - slack)
        return i < len(self.values) and self.values[i] <= target + slack

    def traces(self, f: Figure) -> bool:
        """Whether a stored value shows as this figure at one of its scales (unsigned figures
        may quote a negative value's size: "falls by 12%"). A small bare integer ("3 folds",
        "top 5", "a 30-day band") is a count: it must be a stored value exactly, not any value
        that rounds to it, so a typed figure does not pass by landing near some metric."""
        targets = [f.value] if f.signed else [f.value, -f.value]
        tolerance = 1e-9 if f.is_count() else f.tolerance
        return any(self.has(t / k, tolerance / k) for k in f.scales() for t in targets)


def _walk(obj, nums: list[float], strings: set[str]) -> None:
    if isinstance(obj, bool) or obj is None:
        return
    if isinstance(obj, (int, float)):
        if math.isfinite(obj):
            nums.append(float(obj))
    elif isinstance(obj, str):
        if re.search(r"\d", obj) and re.search(r"[A-Za-z]", obj) and len(obj) >= 4:
            strings.add(obj)
            strings.add(obj.rstrip("."))  # quoted inside a sentence without its full stop
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            _walk(k, nums, strings)
            _walk(v, nums, strings)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _walk(v, nums, strings)
    elif hasattr(obj, "item"):  # numpy scalars
        _walk(obj.item(), nums, strings)


# ------------------------------------------------------------------------------------ problems

@dataclass(frozen=True)
class Problem:
    file: str
    sentence: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}\n    in: \"{self.sentence}\""


class ClaimsError(CasebookError):
    """A report that says something the run did not measure."""


_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")


def sentence_at(text: str, pos: int) -> str:
    """The sentence (or line) around a position, for messages."""
    start = 0
    for m in _SENTENCE_END.finditer(text, 0, pos):
        start = m.end()
    m = _SENTENCE_END.search(text, pos)
    end = m.end() if m else len(text)
    return " ".join(text[start:end].split())


def _sentences(text: str) -> list[str]:
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        out.append(text[start:m.end()])
        start = m.end()
    out.append(text[start:])
    return [t for t in out if t.strip()]


def untraced(name: str, text: str, sources: Sources, verbatim: Iterable[str] = ()) -> list[Problem]:
    """A problem for every figure in `text` no stored value explains."""
    masked = mask(text, [*sources.strings, *verbatim])
    return [Problem(name, sentence_at(text, f.start),
                    f"figure {f.text!r} matches no value in the run's outputs or config")
            for f in figures(masked) if not sources.traces(f)]


# ------------------------------------------------------------------------------------ shipping

_SHIP = re.compile(r"\b(?:ship|deploy)(?:s|ped|ping)?\b[^`.;\n]{0,24}`(?P<name>[^`\n]+)`",
                   re.IGNORECASE)
_WHY_NOT = re.compile(r"not registered|no champion|gate (?:failed|fails)|failed (?:its|the) gate",
                      re.IGNORECASE)


def wrong_ships(name: str, text: str, champions: Mapping[str, Mapping]) -> list[Problem]:
    """"Ship `X`" where X is no task's registered champion, and the sentence says nothing of
    why. `champions`: task -> {"candidate", "view", "registered"} (from serving.json)."""
    registered = {c["candidate"] for c in champions.values() if c.get("registered")}
    out = []
    for m in _SHIP.finditer(text):
        model, sentence = m["name"], sentence_at(text, m.start())
        if model not in registered and not _WHY_NOT.search(sentence):
            out.append(Problem(name, sentence, (
                f"ships `{model}`, but the registered champion"
                f"{'s are' if len(registered) > 1 else ' is'} "
                f"{', '.join(f'`{r}`' for r in sorted(registered)) or 'none'} "
                f"(serving.json); ship the champion or say why not")))
    return out


# ------------------------------------------------------------------------------------ comparisons

_TIE = re.compile(r"within (?:the )?noise|indistinguishable|\bno (?:clear )?winner|too close to "
                  r"call|\btied?\b", re.IGNORECASE)
_BETTER = re.compile(r"\bbeats?\b|\bbeaten\b|\bbetter\b|\boutperform\w*|\bwins?\b|\bahead of\b",
                     re.IGNORECASE)
_WORSE = re.compile(r"\bworse\b|\bbehind\b|\bloses? to\b|\btrails?\b", re.IGNORECASE)
_DIFFERS = re.compile(r"\bdiffers?\b|\bdiffered\b", re.IGNORECASE)
_METRIC_ALIASES = {"auc": ("auc",), "average_precision": ("auprc", "average precision",
                                                          "precision-recall"),
                   "log_loss": ("log loss",), "r2": ("r²", "r2"), "ece": ("ece",
                                                                         "calibration error")}


def _metrics_named(clause: str, metrics: Iterable[str]) -> list[str]:
    low = clause.lower()
    found = []
    words = sorted({(w, m) for m in metrics
                    for w in (m, m.replace("_", " "), *_METRIC_ALIASES.get(m, ()))},
                   key=lambda x: -len(x[0]))
    for w, m in words:
        hit = re.search(rf"(?<![\w]){re.escape(w)}(?![\w])", low)
        if hit:
            found.append(m)
            low = low[:hit.start()] + " " * len(w) + low[hit.end():]
    return found


def _models_named(clause: str, names: set[str]) -> list[str]:
    hits = [(m.start(), m.group(1)) for m in re.finditer(r"`([^`\n]+)`", clause)
            if m.group(1) in names]
    plain = mask(clause)
    hits += [(m.start(), "baseline") for m in re.finditer(r"\bbaseline\b", plain, re.IGNORECASE)]
    seen, out = set(), []
    for _, n in sorted(hits):
        if n not in seen:
            seen.add(n)
            out.append(n)
    return out


_CV = re.compile(r"\bCV\b|cross-valid|\bone SE\b|\bfolds?\b", re.IGNORECASE)


def contradictions(name: str, text: str, metrics: Mapping,
                   selection: Mapping | None = None) -> list[Problem]:
    """Comparative words that the paired intervals of metrics.json contradict (or, in a clause
    about CV, the set of candidates selection.json found within noise of the best), and
    "differs" between two figures that print the same."""
    entries = [r for views in (metrics.get("tasks") or {}).values() for r in views.values()]
    cv_entries = [e for views in ((selection or {}).get("tasks") or {}).values()
                  for e in views.values()]
    names = {m for r in entries for m in r.get("test", {})}
    out = []
    for sentence in _sentences(text):
        for clause in sentence.split(";"):
            plain = mask(clause)
            claims = [(kind, rx.search(plain)) for kind, rx in
                      (("within noise", _TIE), ("better", _BETTER), ("worse", _WORSE),
                       ("differs", _DIFFERS))]
            claims = [(k, m) for k, m in claims if m]
            if not claims:
                continue
            kind, word = claims[0]
            models = _models_named(clause, names)
            problem = None
            if len(models) >= 2:
                problem = (_against_cv(kind, word.group(0), models, cv_entries)
                           if _CV.search(plain) else
                           _against_intervals(kind, word.group(0), models, clause, entries))
            elif kind == "differs":
                problem = _same_figures(clause, word)
            if problem:
                out.append(Problem(name, " ".join(sentence.split()), problem))
    return out


_AGREES = {"within noise": lambda v: v == "within noise", "better": lambda v: v == "better",
           "worse": lambda v: v == "worse", "differs": lambda v: v != "within noise"}


def _against_cv(kind: str, word: str, models: list[str], cv_entries: list[Mapping]) -> str | None:
    """A CV comparison against selection.json: a pair is within noise when both are in the
    set within one SE of the best; the best is better than a candidate outside it."""
    a, b = models[0], models[1]
    found = []
    for e in cv_entries:
        if "within_noise" not in e or a not in e.get("candidates", {}) or b not in e.get(
                "candidates", {}):
            continue
        noise = set(e["within_noise"]) | {e.get("best")}
        if a in noise and b in noise:
            found.append("within noise")
        elif a == e.get("best") and b not in noise:
            found.append("better")
        elif b == e.get("best") and a not in noise:
            found.append("worse")
    if not found or any(_AGREES[kind](v) for v in found):
        return None
    return (f"says {word!r} of `{a}` against `{b}` on CV, but selection.json has them "
            f"{found[0]} (the set within one SE of the best)")


def _against_intervals(kind: str, word: str, models: list[str], clause: str,
                       entries: list[Mapping]) -> str | None:
    a, b = models[0], models[1]
    found = []
    for r in entries:
        if a not in r.get("test", {}) or b not in r.get("test", {}):
            continue
        named = _metrics_named(clause, next(iter(r["test"].values())).keys())
        for metric in named or [r["gate"]["metric"]]:
            v = verdict(r, a, b, metric)
            if v is not None:
                found.append((metric, v, paired(r, a, b, metric)))
    if not found or any(_AGREES[kind](v) for _, v, _ in found):
        return None  # no interval for this pair (nothing to hold the word to), or one agrees
    metric, v, x = found[0]
    return (f"says {word!r} of `{a}` against `{b}`, but the paired interval of their "
            f"{metric} difference is [{x['lo']:.4g}, {x['hi']:.4g}]: {v}")


def _same_figures(clause: str, word: re.Match) -> str | None:
    figs = figures(mask(clause))
    before = [f for f in figs if f.start < word.start()]
    after = [f for f in figs if f.start > word.start()]
    if before and after and before[-1].text == after[0].text:
        return (f"says {word.group(0)!r} between two figures that print the same "
                f"({before[-1].text}); say they agree at this rounding, or print the difference")
    return None


# ------------------------------------------------------------------------------------ the check

def check(texts: Mapping[str, str], sources: Sources, metrics: Mapping,
          champions: Mapping[str, Mapping], selection: Mapping | None = None,
          verbatim: Iterable[str] = (), ship_files: Iterable[str] | None = None
          ) -> list[Problem]:
    """Every problem in the given files (name -> markdown or plain text): untraceable figures,
    contradicted comparisons, and (in `ship_files`, default all) a shipped model that is not the
    champion."""
    verbatim = list(verbatim)
    ship_files = set(texts if ship_files is None else ship_files)
    problems: list[Problem] = []
    for name, text in texts.items():
        problems += untraced(name, text, sources, verbatim)
        problems += contradictions(name, text, metrics, selection)
        if name in ship_files:
            problems += wrong_ships(name, text, champions)
    return problems


def numbers_untraced(name: str, obj, sources: Sources, path: str = "") -> list[Problem]:
    """Every number in a JSON-like object (the card) that is not exactly a stored value."""
    out: list[Problem] = []
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return out
    if isinstance(obj, (int, float)):
        if math.isfinite(obj) and not sources.has(float(obj), 1e-9 * max(1.0, abs(obj))):
            out.append(Problem(name, path, f"value {obj!r} matches no value in the run's outputs"))
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            out += numbers_untraced(name, v, sources, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out += numbers_untraced(name, v, sources, f"{path}[{i}]")
    return out


def raise_if(problems: list[Problem], where: str) -> None:
    if problems:
        raise ClaimsError(
            f"the claims check failed for {where}: {len(problems)} claim(s) the run does not "
            f"support (every figure must be a stored value, the shipped model the champion, a "
            f"comparison agree with its paired interval):\n" + "\n".join(map(str, problems)))


def champions(serving: Mapping) -> dict[str, dict]:
    """Each task's model as serving.json has it: the candidate, its view, whether it was
    registered as champion (its gate passed)."""
    return {task: {"candidate": m["candidate"], "view": m.get("view"),
                   "registered": bool(m.get("registered_model"))}
            for task, m in (serving.get("models") or {}).items()}
