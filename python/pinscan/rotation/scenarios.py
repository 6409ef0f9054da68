# SPDX-License-Identifier: Apache-2.0
"""Which scenarios a run asks for: ``all``, ``routine``, or kinds and names.

A selection is stated once, as the user wrote it, and matched against the scenarios the planner
makes for each chain (whose names depend on the catalog: ``sibling:R11``, ``switch:DigiCert Inc``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from pinscan.errors import ConfigError
from pinscan.rotation.schema import KINDS, ROUTINE


@dataclass(frozen=True)
class Selection:
    """Scenarios by kind (every scenario of it) and by name pattern (``sibling:R1?``, any case)."""

    kinds: frozenset[str]
    patterns: tuple[str, ...] = ()

    def matches(self, name: str, kind: str) -> bool:
        if kind in self.kinds:
            return True
        lowered = name.casefold()
        return any(fnmatch.fnmatchcase(lowered, pattern) for pattern in self.patterns)

    def wants(self, kind: str) -> bool:
        """Whether any scenario of ``kind`` can be selected (the planner skips the others)."""
        return kind in self.kinds or any(p.split(":", 1)[0] == kind for p in self.patterns)

    def unplayed(self, gate: Selection) -> list[str]:
        """The kinds and names of ``gate`` this selection never plays: a gate on them could never
        fire, so callers refuse it rather than pass silently."""
        kinds = [k for k in KINDS if k in gate.kinds and not self.wants(k)]
        names = [p for p in gate.patterns if not self.matches(p, p.split(":", 1)[0])]
        return [*kinds, *names]

    def __str__(self) -> str:
        return ",".join([*(k for k in KINDS if k in self.kinds), *self.patterns])


ALL = Selection(frozenset(KINDS))
ROUTINE_SELECTION = Selection(frozenset(ROUTINE))
NONE = Selection(frozenset())


def parse_scenarios(
    spec: str | Sequence[str] | Selection, *, option: str = "scenarios"
) -> Selection:
    """``all``, ``routine``, ``none``, or kinds and names separated by commas (or given as a
    list): ``renew_new_key,sibling,switch:DigiCert*``. A name is ``kind:<CA or family>``; ``*``
    and ``?`` match as in file names, case does not matter.

    Raises :class:`~pinscan.errors.ConfigError` (naming ``option``) for an unknown kind.
    """
    if isinstance(spec, Selection):
        return spec
    items = spec.split(",") if isinstance(spec, str) else [i for s in spec for i in s.split(",")]
    kinds: set[str] = set()
    patterns: list[str] = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        word = item.casefold()
        if word == "all":
            kinds.update(KINDS)
        elif word == "routine":
            kinds.update(ROUTINE)
        elif word == "none":
            continue
        elif word in KINDS or (word.endswith(":*") and word[:-2] in KINDS):
            kinds.add(word.removesuffix(":*"))
        elif ":" in word and word.split(":", 1)[0] in KINDS:
            patterns.append(word)
        else:
            known = ", ".join(("all", "routine", "none", *KINDS))
            reason = f"no scenario {item!r}: give {known}, or kind:NAME (e.g. sibling:R11)"
            raise ConfigError(option, reason)
    return Selection(frozenset(kinds), tuple(patterns))


__all__ = ["ALL", "NONE", "ROUTINE_SELECTION", "Selection", "parse_scenarios"]
