"""PCFGs with per-level rule-set variants, their JSON schema, validation and a seeded generator.

A *leveled* grammar has nonterminal levels ``0 … D-1`` (level 0 holds only the start symbol) and
terminals at level ``D``. Level ``d`` has ``K_d`` rule-set variants; variant ``k`` gives every
nonterminal of level ``d`` its own productions. A sequence draws ``j = (j_0 … j_{D-1})`` from the
per-level priors and every nonterminal of level ``d`` expands with variant ``j_d``; ``j`` is the
latent metadata of the synthetic study.

A *plain* grammar (no ``levels`` key) is an ordinary CFG/PCFG given as explicit rules, e.g. the
cfg3 family of "Physics of Language Models"; every tool works on it with ``D = 0``.

JSON schema (``"schema": "metacond.pcfg/v1"``)::

    {
      "schema": "metacond.pcfg/v1",
      "name": "small",                      # free text
      "start": "S",
      "terminals": ["t0", "t1", ...],       # whitespace-free token strings
      "nonterminals": ["S", "A0", ...],
      "levels": [                           # optional; absent => plain grammar
        {"symbols": ["S"], "variants": 2, "prior": [0.5, 0.5]},   # prior optional (uniform)
        ...
      ],
      "rules": [
        {"lhs": "S", "rhs": ["A0", "A2"], "prob": 0.4, "variant": 0},  # variant optional (0)
        ...
      ],
      "generator": {...}                    # optional: the GrammarSpec that made it
    }

For plain grammars ``prob`` may be omitted for some or all rules of a left-hand side: those share
the mass the others leave uniformly, as in the rules-text format.

Nonterminals of a plain grammar that the start symbol cannot reach (published grammars such as
cfg3e1 carry some) are pruned with their rules and one warning; ``strict=True`` refuses them
instead. Leveled grammars always refuse them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from metacond import MetacondError

SCHEMA = "metacond.pcfg/v1"
PROB_TOLERANCE = 1e-6
RESERVED_TOKENS = ("<pad>", "<bos>", "<eos>", "<mask>")


class GrammarError(MetacondError):
    """A grammar file or specification is malformed; the message is one line naming the problem."""


@dataclass(frozen=True)
class Rule:
    lhs: str
    rhs: tuple[str, ...]
    prob: float
    variant: int = 0

    def describe(self) -> str:
        v = f" [variant {self.variant}]" if self.variant else ""
        return f"'{self.lhs} -> {' '.join(self.rhs) if self.rhs else '(empty)'}'{v}"


@dataclass
class Level:
    symbols: list[str]
    variants: int = 1
    prior: list[float] | None = None


class Grammar:
    """A validated PCFG, optionally leveled with rule-set variants."""

    def __init__(
        self,
        terminals: Sequence[str],
        nonterminals: Sequence[str],
        start: str,
        rules: Iterable[Rule],
        levels: Sequence[Level] | None = None,
        name: str = "grammar",
        generator: dict[str, Any] | None = None,
        strict: bool = False,
    ) -> None:
        self.terminals = list(terminals)
        self.nonterminals = list(nonterminals)
        self.start = start
        self.rules = list(rules)
        self.levels = [Level(list(lv.symbols), int(lv.variants), None if lv.prior is None else list(lv.prior)) for lv in levels] if levels else None
        self.name = name
        self.generator = generator
        self._validate(strict)

    # ------------------------------------------------------------------ properties
    @property
    def depth(self) -> int:
        """D: the number of metadata levels (0 for a plain grammar)."""
        return len(self.levels) if self.levels else 0

    @property
    def num_variants(self) -> list[int]:
        return [lv.variants for lv in self.levels] if self.levels else []

    @property
    def priors(self) -> list[np.ndarray]:
        out = []
        for lv in self.levels or []:
            p = np.full(lv.variants, 1.0 / lv.variants) if lv.prior is None else np.asarray(lv.prior, dtype=np.float64)
            out.append(p)
        return out

    def level_of(self, symbol: str) -> int:
        """Level of a nonterminal (-1 for plain grammars)."""
        return self._level.get(symbol, -1)

    def rules_for(self, lhs: str, variant: int = 0) -> list[Rule]:
        return self._by_lhs.get((lhs, variant), [])

    def max_yield(self, cap: int = 1_000_000) -> int:
        """Longest terminal string of a non-recursive grammar (capped for recursive ones)."""
        memo: dict[str, int] = {}
        on_path: set[str] = set()
        terms = set(self.terminals)

        def longest(sym: str) -> int:
            if sym in terms:
                return 1
            if sym in memo:
                return memo[sym]
            if sym in on_path:
                return cap
            on_path.add(sym)
            best = 0
            for r in self.rules:
                if r.lhs == sym:
                    best = max(best, min(cap, sum(longest(s) for s in r.rhs)))
            on_path.discard(sym)
            memo[sym] = best
            return best

        return longest(self.start)

    def metadata_combinations(self) -> list[tuple[int, ...]]:
        return list(itertools.product(*[range(k) for k in self.num_variants]))

    # ------------------------------------------------------------------ validation
    def _validate(self, strict: bool = False) -> None:
        """Every check a grammar file must pass, in order; each raises one GrammarError line naming the problem."""
        tset, nset = self._check_symbols()
        self._check_levels(nset)
        by_lhs = self._check_rules(tset, nset)
        self._check_rule_sets(by_lhs)
        self._by_lhs = by_lhs
        by_lhs, nset = self._prune_unreachable(by_lhs, nset, strict)
        self._check_termination(by_lhs, tset)
        self._check_unit_cycles(nset)
        if self.levels is None:
            self._check_consistent()

    def _check_symbols(self) -> tuple[set[str], set[str]]:
        """Names: non-empty, unique, not both kinds, not a reserved token; the start symbol is declared."""
        tset, nset = set(self.terminals), set(self.nonterminals)
        if not self.terminals:
            raise GrammarError("grammar has no terminals")
        if not self.nonterminals:
            raise GrammarError("grammar has no nonterminals")
        for names, kind in ((self.terminals, "terminal"), (self.nonterminals, "nonterminal")):
            seen = set()
            for s in names:
                if not isinstance(s, str) or not s or any(c.isspace() for c in s):
                    raise GrammarError(f"{kind} name {s!r} must be a non-empty string without whitespace")
                if s in seen:
                    raise GrammarError(f"{kind} {s!r} is declared twice")
                seen.add(s)
        both = tset & nset
        if both:
            raise GrammarError(f"symbol {sorted(both)[0]!r} is declared both terminal and nonterminal")
        reserved = tset & set(RESERVED_TOKENS)
        if reserved or any(t.startswith("<m") and t.endswith(">") for t in tset):
            bad = sorted(reserved)[0] if reserved else next(t for t in self.terminals if t.startswith("<m"))
            raise GrammarError(f"terminal {bad!r} collides with a reserved tokenizer token")
        if self.start not in nset:
            raise GrammarError(f"start symbol {self.start!r} is not a declared nonterminal")

        return tset, nset

    def _check_levels(self, nset: set[str]) -> None:
        """Leveled grammars: level 0 is the start symbol, priors are distributions, every nonterminal has one level."""
        self._level: dict[str, int] = {}
        if self.levels is not None:
            if len(self.levels) == 0:
                raise GrammarError("'levels' is empty: omit it for a plain grammar")
            if self.levels[0].symbols != [self.start]:
                raise GrammarError(f"level 0 must hold exactly the start symbol {self.start!r}, got {self.levels[0].symbols}")
            for d, lv in enumerate(self.levels):
                if lv.variants < 1:
                    raise GrammarError(f"level {d} has {lv.variants} variants; need at least 1")
                if lv.prior is not None:
                    if len(lv.prior) != lv.variants or any((not math.isfinite(p)) or p < 0 for p in lv.prior):
                        raise GrammarError(f"level {d} prior {lv.prior} must hold {lv.variants} non-negative numbers")
                    if abs(sum(lv.prior) - 1.0) > PROB_TOLERANCE:
                        raise GrammarError(f"level {d} prior sums to {sum(lv.prior):.6g}, not 1")
                for s in lv.symbols:
                    if s not in nset:
                        raise GrammarError(f"level {d} symbol {s!r} is not a declared nonterminal")
                    if s in self._level:
                        raise GrammarError(f"symbol {s!r} appears in levels {self._level[s]} and {d}")
                    self._level[s] = d
            missing = nset - set(self._level)
            if missing:
                raise GrammarError(f"nonterminal {sorted(missing)[0]!r} is in no level")


    def _check_rules(self, tset: set[str], nset: set[str]) -> dict[tuple[str, int], list[Rule]]:
        """Each rule on its own: defined symbols, non-empty right side, probability in (0, 1], level structure."""
        by_lhs: dict[tuple[str, int], list[Rule]] = {}
        for idx, r in enumerate(self.rules):
            where = f"rule #{idx} {r.describe()}"
            if r.lhs not in nset:
                kind = "a terminal" if r.lhs in tset else "undefined"
                raise GrammarError(f"{where}: left-hand side {r.lhs!r} is {kind}")
            if len(r.rhs) == 0:
                raise GrammarError(f"{where}: empty right-hand side (epsilon rules are not supported)")
            for s in r.rhs:
                if s not in tset and s not in nset:
                    raise GrammarError(f"{where}: undefined symbol {s!r}")
            if not (isinstance(r.prob, (int, float)) and math.isfinite(r.prob) and 0.0 < r.prob <= 1.0 + PROB_TOLERANCE):
                raise GrammarError(f"{where}: probability {r.prob!r} is not in (0, 1]")
            if self.levels is not None:
                d = self._level[r.lhs]
                if not (0 <= r.variant < self.levels[d].variants):
                    raise GrammarError(f"{where}: variant {r.variant} out of range for level {d} with {self.levels[d].variants} variants")
                if d < self.depth - 1:
                    bad = [s for s in r.rhs if self._level.get(s) != d + 1]
                    if bad:
                        raise GrammarError(f"{where}: symbol {bad[0]!r} is not of level {d + 1} (leveled grammars expand one level at a time)")
                else:
                    bad = [s for s in r.rhs if s not in tset]
                    if bad:
                        raise GrammarError(f"{where}: last-level rules must produce terminals, got {bad[0]!r}")
            elif r.variant != 0:
                raise GrammarError(f"{where}: variant {r.variant} given but the grammar declares no levels")
            by_lhs.setdefault((r.lhs, r.variant), []).append(r)

        return by_lhs

    def _check_rule_sets(self, by_lhs: dict[tuple[str, int], list[Rule]]) -> None:
        """Each (nonterminal, variant) has rules whose probabilities sum to 1, none listed twice."""
        for s in self.nonterminals:
            nvar = self.levels[self._level[s]].variants if self.levels is not None else 1
            for v in range(nvar):
                rs = by_lhs.get((s, v))
                if not rs:
                    vtxt = f" variant {v}" if self.levels is not None else ""
                    raise GrammarError(f"nonterminal {s!r}{vtxt} has no rules")
                total = sum(r.prob for r in rs)
                if abs(total - 1.0) > PROB_TOLERANCE:
                    raise GrammarError(
                        f"probabilities of {s!r}{' variant ' + str(v) if self.levels is not None else ''} sum to {total:.6g}, not 1 (rules: "
                        + "; ".join(r.describe() for r in rs[:4]) + (" …" if len(rs) > 4 else "") + ")"
                    )
                seen_rhs = set()
                for r in rs:
                    if r.rhs in seen_rhs:
                        raise GrammarError(f"rule {r.describe()} is listed twice")
                    seen_rhs.add(r.rhs)

    def _prune_unreachable(self, by_lhs: dict[tuple[str, int], list[Rule]], nset: set[str], strict: bool):
        """Refuse (strict, or leveled) or drop nonterminals the start symbol never reaches."""
        reach = self._reachable(self.start, nset) | {self.start}
        unreachable = [s for s in self.nonterminals if s not in reach]
        if unreachable and (strict or self.levels is not None):
            hint = f" ({len(unreachable)} unreachable in all; without strict they are pruned)" if self.levels is None else ""
            raise GrammarError(f"nonterminal {unreachable[0]!r} is unreachable from the start symbol {self.start!r}{hint}")
        if unreachable:
            # Published plain grammars (cfg3e1) carry dead nonterminals; they cannot affect the
            # language or its probabilities, so drop them (after their rules passed the checks
            # above) rather than refuse the file. Terminals stay: the vocabulary and its token ids
            # do not depend on reachability, and no check requires every terminal to be produced.
            dead = set(unreachable)
            n_rules = len(self.rules)
            self.nonterminals = [s for s in self.nonterminals if s not in dead]
            self.rules = [r for r in self.rules if r.lhs not in dead]
            by_lhs = {k: rs for k, rs in by_lhs.items() if k[0] not in dead}
            self._by_lhs = by_lhs
            nset -= dead
            warnings.warn(
                f"grammar {self.name!r}: pruned {len(dead)} nonterminals unreachable from {self.start!r} "
                f"(and {n_rules - len(self.rules)} rules)",
                stacklevel=5,
            )

        return by_lhs, nset

    def _check_termination(self, by_lhs: dict[tuple[str, int], list[Rule]], tset: set[str]) -> None:
        # Termination: every nonterminal must derive some terminal string, in every variant.
        done: set[tuple[str, int]] = set()
        term_any: set[str] = set()
        changed = True
        while changed:
            changed = False
            for (lhs, v), rs in by_lhs.items():
                if (lhs, v) in done:
                    continue
                if any(all(s in tset or s in term_any for s in r.rhs) for r in rs):
                    done.add((lhs, v))
                    changed = True
                    nvar = self.levels[self._level[lhs]].variants if self.levels is not None else 1
                    if all((lhs, u) in done for u in range(nvar)):
                        term_any.add(lhs)
        stuck = [k for k in by_lhs if k not in done]
        if stuck:
            # Name a root cause: the stuck symbol that depends on the fewest other stuck symbols.
            stuck_syms = {k[0] for k in stuck}

            lhs, v = min(stuck, key=lambda k: len(self._reachable(k[0], stuck_syms) - {k[0]}))
            raise GrammarError(f"nonterminal {lhs!r} cannot derive any terminal string (non-terminating rules, e.g. {by_lhs[(lhs, v)][0].describe()})")


    def _check_unit_cycles(self, nset: set[str]) -> None:
        # Unit cycles (A =>+ A through one-symbol rules) make parses ambiguous without bound.
        unit: dict[str, set[str]] = {}
        for r in self.rules:
            if len(r.rhs) == 1 and r.rhs[0] in nset:
                unit.setdefault(r.lhs, set()).add(r.rhs[0])
        color: dict[str, int] = {}

        def visit(a: str, path: list[str]) -> None:
            color[a] = 1
            for b in sorted(unit.get(a, ())):
                if color.get(b) == 1:
                    cyc = path[path.index(b):] + [b] if b in path else [a, b]
                    raise GrammarError(f"unit-rule cycle {' -> '.join(cyc)} (rules of the form A -> B must not loop)")
                if b not in color:
                    visit(b, path + [b])
            color[a] = 2

        for a in sorted(unit):
            if a not in color:
                visit(a, [a])


    def _reachable(self, a: str, within: set[str]) -> set[str]:
        """Symbols of ``within`` reachable from ``a`` through right-hand sides."""
        seen: set[str] = set()
        todo = [a]
        while todo:
            x = todo.pop()
            for r in self.rules:
                if r.lhs == x:
                    for y in r.rhs:
                        if y in within and y not in seen:
                            seen.add(y)
                            todo.append(y)
        return seen

    def _check_consistent(self) -> None:
        """A recursive PCFG can leak mass to infinite derivations; require a finite expected size."""
        idx = {s: i for i, s in enumerate(self.nonterminals)}
        m = np.zeros((len(idx), len(idx)))
        for r in self.rules:
            for s in r.rhs:
                if s in idx:
                    m[idx[r.lhs], idx[s]] += r.prob
        rho = max(abs(np.linalg.eigvals(m))) if len(idx) else 0.0
        if rho >= 1.0 - 1e-9:
            raise GrammarError(
                f"grammar is not consistent: expected number of children per nonterminal has spectral radius {rho:.4g} >= 1, "
                "so derivations need not terminate; lower the probabilities of recursive rules"
            )

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schema": SCHEMA,
            "name": self.name,
            "start": self.start,
            "terminals": self.terminals,
            "nonterminals": self.nonterminals,
        }
        if self.levels is not None:
            d["levels"] = [
                {"symbols": lv.symbols, "variants": lv.variants, **({"prior": lv.prior} if lv.prior is not None else {})}
                for lv in self.levels
            ]
        d["rules"] = [
            {"lhs": r.lhs, "rhs": list(r.rhs), "prob": r.prob, **({"variant": r.variant} if self.levels is not None else {})}
            for r in self.rules
        ]
        if self.generator is not None:
            d["generator"] = self.generator
        return d

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def fingerprint(self) -> str:
        """Hash of the grammar's canonical content: keys dataset caches.

        The same grammar read from rules text or from JSON (in any rule order) hashes the same:
        name, generator and rule order are left out, probabilities and priors are rounded to 12
        significant digits and an omitted prior counts as the uniform one. Terminal and
        nonterminal order stay in: token ids and label ids follow them.
        """
        def num(x: float) -> str:
            return f"{float(x):.12g}"

        d: dict[str, Any] = {
            "start": self.start,
            "terminals": self.terminals,
            "nonterminals": self.nonterminals,
            "levels": None if self.levels is None else [
                {"symbols": lv.symbols, "variants": lv.variants, "prior": [num(p) for p in prior]}
                for lv, prior in zip(self.levels, self.priors)
            ],
            "rules": sorted([r.lhs, r.variant, list(r.rhs), num(r.prob)] for r in self.rules),
        }
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: Any, strict: bool = False) -> "Grammar":
        if not isinstance(d, dict):
            raise GrammarError(f"grammar must be a JSON object, got {type(d).__name__}")
        schema = d.get("schema", SCHEMA)
        if schema != SCHEMA:
            raise GrammarError(f"unknown grammar schema {schema!r}; expected {SCHEMA!r}")
        for key in ("start", "terminals", "nonterminals", "rules"):
            if key not in d:
                raise GrammarError(f"grammar is missing the required key {key!r}")
        if not isinstance(d["rules"], list):
            raise GrammarError("'rules' must be a list")
        levels = None
        if d.get("levels") is not None:
            if not isinstance(d["levels"], list):
                raise GrammarError("'levels' must be a list")
            levels = []
            for i, lv in enumerate(d["levels"]):
                if not isinstance(lv, dict) or "symbols" not in lv:
                    raise GrammarError(f"level {i} must be an object with 'symbols'")
                levels.append(Level(list(lv["symbols"]), int(lv.get("variants", 1)), lv.get("prior")))
        raw = []
        for i, r in enumerate(d["rules"]):
            if not isinstance(r, dict) or "lhs" not in r or "rhs" not in r:
                raise GrammarError(f"rule #{i} must be an object with 'lhs' and 'rhs', got {r!r}"[:200])
            rhs = r["rhs"]
            if isinstance(rhs, str):
                rhs = rhs.split()
            raw.append((str(r["lhs"]), tuple(str(s) for s in rhs), r.get("prob"), int(r.get("variant", 0))))
        probs: list[float | None] = []
        for i, (lhs, rhs, p, v) in enumerate(raw):
            try:
                probs.append(None if p is None else float(p))
            except (TypeError, ValueError):
                raise GrammarError(f"rule #{i} '{lhs} -> {' '.join(rhs)}': probability {p!r} is not a number") from None
        # Rules with no probability share the mass their left-hand side's other rules leave,
        # uniformly, exactly as parse_rules_text does, so both formats load the same numbers.
        given: dict[tuple[str, int], float] = {}
        n_free: dict[tuple[str, int], int] = {}
        for (lhs, _, _, v), p in zip(raw, probs):
            if p is None:
                n_free[(lhs, v)] = n_free.get((lhs, v), 0) + 1
            else:
                given[(lhs, v)] = given.get((lhs, v), 0.0) + p
        rules = [
            Rule(lhs, rhs, p if p is not None else (1.0 - given.get((lhs, v), 0.0)) / n_free[(lhs, v)], v)
            for (lhs, rhs, _, v), p in zip(raw, probs)
        ]
        return cls(d["terminals"], d["nonterminals"], d["start"], rules, levels, name=d.get("name", "grammar"), generator=d.get("generator"),
                   strict=strict)

    @classmethod
    def load(cls, path: str | Path, strict: bool = False) -> "Grammar":
        path = Path(path)
        if not path.is_file():
            raise GrammarError(f"grammar file {str(path)!r} does not exist")
        text = path.read_text()
        if path.suffix in (".txt", ".cfg"):
            return parse_rules_text(text, name=path.stem, strict=strict)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise GrammarError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
        return cls.from_dict(data, strict=strict)

    def save(self, path: str | Path) -> None:
        self.to_json(path)

    def summary(self) -> str:
        kind = f"leveled, D={self.depth}, variants per level {self.num_variants}" if self.levels else "plain"
        return (
            f"grammar {self.name!r}: {kind}, {len(self.nonterminals)} nonterminals, {len(self.terminals)} terminals, "
            f"{len(self.rules)} rules, fingerprint {self.fingerprint()}"
        )

    def __repr__(self) -> str:
        return f"Grammar({self.summary()})"


def parse_rules_text(text: str, name: str = "grammar", start: str | None = None, strict: bool = False) -> Grammar:
    """Read a plain CFG/PCFG written as lines ``A -> B C [0.5] | d e``.

    Symbols that never appear on a left-hand side are terminals. The first left-hand side is the
    start symbol unless ``start`` is given. Alternatives without ``[p]`` share the remaining mass of
    their left-hand side uniformly. ``#`` starts a comment. Nonterminals unreachable from the start
    symbol are pruned with a warning, or refused with ``strict=True``.
    """
    order: list[str] = []
    alts: dict[str, list[tuple[tuple[str, ...], float | None]]] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "->" not in line:
            raise GrammarError(f"line {lineno}: expected 'LHS -> RHS | RHS …', got {line!r}")
        lhs, rhs_all = (s.strip() for s in line.split("->", 1))
        if not lhs or len(lhs.split()) != 1:
            raise GrammarError(f"line {lineno}: left-hand side {lhs!r} must be one symbol")
        if lhs not in alts:
            order.append(lhs)
            alts[lhs] = []
        for alt in rhs_all.split("|"):
            toks = alt.split()
            p = None
            if toks and toks[-1].startswith("[") and toks[-1].endswith("]"):
                try:
                    p = float(toks[-1][1:-1])
                except ValueError:
                    raise GrammarError(f"line {lineno}: bad probability {toks[-1]!r}") from None
                toks = toks[:-1]
            if not toks:
                raise GrammarError(f"line {lineno}: empty right-hand side in {line!r}")
            alts[lhs].append((tuple(toks), p))
    if not order:
        raise GrammarError("no rules found")
    nts = order
    terms: list[str] = []
    for lhs in order:
        for rhs, _ in alts[lhs]:
            for s in rhs:
                if s not in alts and s not in terms:
                    terms.append(s)
    rules = []
    for lhs in order:
        given = sum(p for _, p in alts[lhs] if p is not None)
        n_free = sum(1 for _, p in alts[lhs] if p is None)
        for rhs, p in alts[lhs]:
            rules.append(Rule(lhs, rhs, p if p is not None else (1.0 - given) / n_free))
    return Grammar(terms, nts, start or order[0], rules, None, name=name, strict=strict)


# ---------------------------------------------------------------------- generator
@dataclass
class GrammarSpec:
    """Size parameters of a generated leveled grammar (documented in the README)."""

    depth: int = field(default=5, metadata={"help": "D: nonterminal levels 0..D-1 (level 0 = root); terminals at level D."})
    symbols_per_level: list[int] = field(default_factory=lambda: [1, 3, 3, 3, 3], metadata={"help": "Nonterminals per level; level 0 must be 1."})
    variants_per_level: list[int] = field(default_factory=lambda: [2, 2, 2, 2, 2], metadata={"help": "K_d: rule-set variants per level."})
    rules_per_symbol: list[int] = field(default_factory=lambda: [2, 3], metadata={"help": "Inclusive range of productions per nonterminal and variant."})
    rhs_lengths: list[int] = field(default_factory=lambda: [2, 3], metadata={"help": "Allowed right-hand-side lengths."})
    rhs_length_weights: list[float] | None = field(default=None, metadata={"help": "Probability of each rhs length when drawing a rule (uniform if unset)."})
    num_terminals: int = field(default=3, metadata={"help": "Number of terminal symbols t0, t1, …"})
    prob_style: str = field(default="dirichlet", metadata={"help": "'uniform' (equal rule probabilities) or 'dirichlet' (Dirichlet(alpha) draws)."})
    dirichlet_alpha: float = field(default=1.0, metadata={"help": "Concentration for prob_style=dirichlet."})
    seed: int = field(default=0, metadata={"help": "Generator seed: same spec and seed give the same grammar."})

    def __post_init__(self) -> None:
        if isinstance(self.symbols_per_level, int):
            self.symbols_per_level = [1] + [self.symbols_per_level] * (self.depth - 1)
        if isinstance(self.variants_per_level, int):
            self.variants_per_level = [self.variants_per_level] * self.depth
        if self.depth < 1:
            raise GrammarError(f"depth must be >= 1, got {self.depth}")
        if len(self.symbols_per_level) != self.depth or len(self.variants_per_level) != self.depth:
            raise GrammarError(f"symbols_per_level and variants_per_level need {self.depth} entries (one per level)")
        if self.symbols_per_level[0] != 1:
            raise GrammarError("level 0 holds the single start symbol: symbols_per_level[0] must be 1")
        if min(self.symbols_per_level) < 1 or min(self.variants_per_level) < 1 or self.num_terminals < 1:
            raise GrammarError("symbol, variant and terminal counts must be positive")
        lo, hi = self.rules_per_symbol
        if not (1 <= lo <= hi):
            raise GrammarError(f"rules_per_symbol must be [lo, hi] with 1 <= lo <= hi, got {self.rules_per_symbol}")
        if not self.rhs_lengths or min(self.rhs_lengths) < 1:
            raise GrammarError(f"rhs_lengths must be positive, got {self.rhs_lengths}")
        if self.rhs_length_weights is not None and len(self.rhs_length_weights) != len(self.rhs_lengths):
            raise GrammarError("rhs_length_weights needs one weight per rhs length")
        if self.prob_style not in ("uniform", "dirichlet"):
            raise GrammarError(f"prob_style must be 'uniform' or 'dirichlet', got {self.prob_style!r}")


def _distinct_rhs_capacity(n_children: int, lengths: Sequence[int]) -> int:
    return sum(n_children**L for L in lengths)


def generate_grammar(spec: GrammarSpec, name: str = "generated") -> Grammar:
    """Draw a leveled grammar with rule-set variants from ``spec``.

    Every variant of every nonterminal draws its own productions, so ``j_d`` changes the statistics
    of the whole subtree below level ``d``. Every symbol of level ``d+1`` is used by some production
    of level ``d`` (no unreachable symbols).
    """
    rng = np.random.default_rng(spec.seed)
    D = spec.depth
    names = [["S"]] + [[f"N{d}_{i}" for i in range(spec.symbols_per_level[d])] for d in range(1, D)]
    terminals = [f"t{i}" for i in range(spec.num_terminals)]
    w = None if spec.rhs_length_weights is None else np.asarray(spec.rhs_length_weights, float) / sum(spec.rhs_length_weights)
    rules: list[Rule] = []
    for d in range(D):
        children = names[d + 1] if d + 1 < D else terminals
        cap = _distinct_rhs_capacity(len(children), spec.rhs_lengths)
        for k in range(spec.variants_per_level[d]):
            drawn: list[tuple[str, list[tuple[str, ...]]]] = []
            for a in names[d]:
                lo, hi = spec.rules_per_symbol
                n_rules = min(int(rng.integers(lo, hi + 1)), cap)
                seen: set[tuple[str, ...]] = set()
                while len(seen) < n_rules:
                    L = int(rng.choice(spec.rhs_lengths, p=w))
                    seen.add(tuple(children[i] for i in rng.integers(0, len(children), size=L)))
                drawn.append((a, sorted(seen)))
            # Cover every child symbol in each variant so no symbol is unreachable under any j.
            used = {s for _, rs in drawn for rhs in rs for s in rhs}
            for s in children:
                if s not in used and d + 1 < D:
                    ai = int(rng.integers(0, len(drawn)))
                    ri = int(rng.integers(0, len(drawn[ai][1])))
                    new_rhs = list(drawn[ai][1][ri])
                    new_rhs[int(rng.integers(0, len(new_rhs)))] = s
                    if tuple(new_rhs) not in drawn[ai][1]:
                        drawn[ai][1][ri] = tuple(new_rhs)
                        used = {x for _, rs in drawn for r2 in rs for x in r2}
            for s in children:
                if s not in {x for _, rs in drawn for r2 in rs for x in r2} and d + 1 < D:
                    # Fall back to a fresh production that uses it.
                    a, rs = drawn[0]
                    rs.append(tuple([s] * spec.rhs_lengths[0]))
            for a, rs in drawn:
                if spec.prob_style == "uniform":
                    ps = np.full(len(rs), 1.0 / len(rs))
                else:
                    ps = rng.dirichlet(np.full(len(rs), spec.dirichlet_alpha))
                    ps = np.maximum(ps, 1e-3)
                    ps = ps / ps.sum()
                for rhs, p in zip(rs, ps):
                    rules.append(Rule(a, rhs, float(p), k))
    # Round so the JSON is readable, then renormalize exactly so sums pass validation.
    fixed: list[Rule] = []
    groups: dict[tuple[str, int], list[Rule]] = {}
    for r in rules:
        groups.setdefault((r.lhs, r.variant), []).append(r)
    for (lhs, v), group in groups.items():
        ps = np.round([r.prob for r in group], 6)
        ps[-1] = round(1.0 - ps[:-1].sum(), 6)
        fixed.extend(Rule(r.lhs, r.rhs, float(p), r.variant) for r, p in zip(group, ps))
    levels = [Level(names[d], spec.variants_per_level[d]) for d in range(D)]
    nts = [s for lv in names for s in lv]
    return Grammar(terminals, nts, "S", fixed, levels, name=name, generator=asdict(spec))


# ---------------------------------------------------------------------- presets
PRESETS: dict[str, dict[str, Any]] = {
    # CPU-friendly: mostly binary productions give ~32-120 terminals (mean ~55).
    "small": dict(
        depth=5, symbols_per_level=[1, 3, 3, 3, 3], variants_per_level=[2, 2, 2, 2, 2], rules_per_symbol=[2, 3],
        rhs_lengths=[2, 3], rhs_length_weights=[0.8, 0.2], num_terminals=5, prob_style="dirichlet", dirichlet_alpha=2.0, seed=0,
    ),
    # The CPU study's grammar: sparse rules (Dirichlet 0.5) over 10 terminals make the latent readable from
    # short prompts (`metacond pcfg bayes-table --grammar cpu`: Bayes accuracy at L=5 is >= chance + 0.10 on
    # levels 1-3 and at L=20 >= chance + 0.25), with short sequences (32-58 terminals) that train fast on a CPU.
    "cpu": dict(
        depth=5, symbols_per_level=[1, 3, 3, 3, 3], variants_per_level=[2, 2, 2, 2, 2], rules_per_symbol=[2, 3],
        rhs_lengths=[2, 3], rhs_length_weights=[0.8, 0.2], num_terminals=10, prob_style="dirichlet", dirichlet_alpha=0.5, seed=2,
    ),
    # The paper does not publish its sizes; D=5 as its D_M grid {0,1,3,5} implies, cfg3-like widths,
    # mostly ternary productions so sequences run to a few hundred terminals (mean ~180, max 243). Sparse
    # rules (Dirichlet 0.5) over 20 terminals (seed chosen by `metacond pcfg bayes-table`) make j readable
    # from short prompts: Bayes at L=5 >= chance + 0.10 on 4 levels, at L=20 >= chance + 0.25 on 3.
    "paper": dict(
        depth=5, symbols_per_level=[1, 3, 3, 3, 3], variants_per_level=[3, 3, 3, 3, 3], rules_per_symbol=[2, 3],
        rhs_lengths=[2, 3], rhs_length_weights=[0.15, 0.85], num_terminals=20, prob_style="dirichlet", dirichlet_alpha=0.5, seed=5,
    ),
    # Tiny grammar whose finite language can be enumerated: used by tests against brute force.
    "tiny": dict(
        depth=2, symbols_per_level=[1, 2], variants_per_level=[2, 2], rules_per_symbol=[2, 2],
        rhs_lengths=[2, 3], rhs_length_weights=[0.7, 0.3], num_terminals=2, prob_style="dirichlet", dirichlet_alpha=1.0, seed=0,
    ),
}


def preset_grammar(name: str, seed: int | None = None) -> Grammar:
    if name not in PRESETS:
        raise GrammarError(f"unknown grammar preset {name!r}; choose from {sorted(PRESETS)} or pass a JSON file")
    kw = dict(PRESETS[name])
    if seed is not None:
        kw["seed"] = seed
    return generate_grammar(GrammarSpec(**kw), name=name)


def resolve_grammar(spec: str, seed: int | None = None) -> Grammar:
    """A preset name or a path to a grammar file."""
    if spec in PRESETS:
        return preset_grammar(spec, seed)
    p = Path(spec)
    if p.suffix in (".json", ".txt", ".cfg") or p.exists():
        return Grammar.load(p)
    raise GrammarError(f"{spec!r} is neither a grammar preset ({', '.join(sorted(PRESETS))}) nor an existing grammar file")
