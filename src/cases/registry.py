"""Finds the cases: every subpackage of `cases` (other than the lifecycle) registers itself on
import, so adding a case needs no line here."""

import importlib
import pkgutil

import cases

_NOT_CASES = {"lifecycle"}

for _info in pkgutil.iter_modules(cases.__path__):
    if _info.ispkg and _info.name not in _NOT_CASES:
        importlib.import_module(f"cases.{_info.name}")
