"""Grammar schema, generator, presets and one-line errors for malformed grammars."""

import json

import numpy as np
import pytest

from metacond.data_builders.pcfg import Grammar, GrammarError, GrammarSpec, generate_grammar, parse_rules_text, preset_grammar, sample


def test_generator_is_deterministic_and_round_trips(tmp_path):
    a = preset_grammar("small")
    b = preset_grammar("small")
    assert a.to_json() == b.to_json()
    assert preset_grammar("small", seed=1).fingerprint() != a.fingerprint()
    a.save(tmp_path / "g.json")
    c = Grammar.load(tmp_path / "g.json")
    assert c.fingerprint() == a.fingerprint() and c.num_variants == a.num_variants and c.depth == 5


@pytest.mark.parametrize("name,lo,hi", [("small", 25, 140), ("paper", 60, 243)])
def test_presets_have_documented_shape(name, lo, hi):
    g = preset_grammar(name)
    assert g.depth == 5 and g.levels[0].symbols == [g.start]
    lens = sample(g, 2000, seed=0).lengths()
    assert lo <= lens.min() and lens.max() <= hi
    if name == "small":
        assert 40 <= lens.mean() <= 90
    else:
        assert lens.mean() >= 150  # "a few hundred terminals"


def test_plain_text_import_uniform_probabilities():
    g = parse_rules_text("S -> A B | B\nA -> a | b a\nB -> b")
    assert g.depth == 0 and set(g.terminals) == {"a", "b"}
    assert [r.prob for r in g.rules_for("S")] == [0.5, 0.5]


def _base():
    return {
        "start": "S", "terminals": ["a", "b"], "nonterminals": ["S", "A"],
        "rules": [{"lhs": "S", "rhs": ["A", "A"], "prob": 1.0}, {"lhs": "A", "rhs": ["a"], "prob": 0.5}, {"lhs": "A", "rhs": ["b"], "prob": 0.5}],
    }


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["rules"].append({"lhs": "A", "rhs": ["C"], "prob": 0.1}), r"rule #3 'A -> C'.*undefined symbol 'C'"),
    (lambda d: d["rules"][1].update(prob=0.7), r"probabilities of 'A' sum to 1\.2"),
    (lambda d: d["rules"][0].update(rhs=[]), r"rule #0 'S -> \(empty\)'.*empty right-hand side"),
    (lambda d: (d["nonterminals"].append("U"), d["rules"].append({"lhs": "U", "rhs": ["a"], "prob": 1.0})), r"'U' is unreachable"),
    (lambda d: (d["nonterminals"].append("L"), d["rules"].__setitem__(0, {"lhs": "S", "rhs": ["A", "L"], "prob": 1.0}),
                d["rules"].append({"lhs": "L", "rhs": ["L", "a"], "prob": 1.0})), r"'L' cannot derive any terminal string"),
    (lambda d: d["rules"].append({"lhs": "x", "rhs": ["a"], "prob": 1.0}), r"left-hand side 'x' is undefined"),
    (lambda d: d.pop("start"), r"missing the required key 'start'"),
    (lambda d: d["rules"][1].update(prob="high"), r"probability 'high' is not a number"),
    (lambda d: (d["rules"].__setitem__(1, {"lhs": "A", "rhs": ["S"], "prob": 0.5})), r"unit-rule cycle|not consistent"),
    (lambda d: d.update(levels=[{"symbols": ["S"], "variants": 2}, {"symbols": ["A"]}]), r"'S' variant 1 has no rules"),
])
def test_malformed_grammar_is_one_clear_line(tmp_path, mutate, message):
    d = _base()
    mutate(d)
    p = tmp_path / "g.json"
    p.write_text(json.dumps(d))
    with pytest.raises(GrammarError, match=message) as e:
        Grammar.load(p)
    assert "\n" not in str(e.value)


def test_broken_json_and_missing_file(tmp_path):
    p = tmp_path / "g.json"
    p.write_text('{"start": "S", ')
    with pytest.raises(GrammarError, match=r"not valid JSON .*line 1"):
        Grammar.load(p)
    with pytest.raises(GrammarError, match="does not exist"):
        Grammar.load(tmp_path / "nope.json")


def test_inconsistent_recursive_grammar_rejected():
    with pytest.raises(GrammarError, match="not consistent"):
        parse_rules_text("S -> S S [0.6] | a [0.4]")


def test_impossible_generator_settings():
    with pytest.raises(GrammarError, match="depth must be >= 1"):
        GrammarSpec(depth=0, symbols_per_level=[], variants_per_level=[])
    with pytest.raises(GrammarError, match="positive"):
        GrammarSpec(num_terminals=-1)
    with pytest.raises(GrammarError, match="one per level"):
        GrammarSpec(depth=3)


def test_variants_change_the_distribution():
    g = preset_grammar("small")
    b = sample(g, 4000, seed=2)
    # Terminal unigram frequencies differ between the two values of j_4 (the preterminal level).
    f = []
    for v in range(2):
        rows = np.where(b.metadata[:, 4] == v)[0]
        toks = np.concatenate([b.sequence(i) for i in rows])
        f.append(np.bincount(toks, minlength=len(g.terminals)) / len(toks))
    assert np.abs(f[0] - f[1]).sum() > 0.1
