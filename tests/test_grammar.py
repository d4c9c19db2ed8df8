"""Grammar schema, generator, presets and one-line errors for malformed grammars."""

import json
import warnings

import numpy as np
import pytest

from metacond.cli import run_guarded
from metacond.data_builders.pcfg import Grammar, GrammarError, GrammarSpec, parse_rules_text, preset_grammar, sample
from metacond.data_builders.pcfg.cli import main as pcfg_main


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



# cfg3e1-style: 'S' never reaches 'U' or 'V', and terminal 'z' occurs only under them.
UNREACHABLE = "S -> A B | B A\nA -> a | b\nB -> b\nU -> V z [0.4] | a [0.6]\nV -> z\n"


def test_unreachable_nonterminals_are_pruned_with_a_counted_warning(tmp_path):
    with pytest.warns(UserWarning, match=r"grammar 'g': pruned 2 nonterminals unreachable from 'S' \(and 3 rules\)"):
        g = parse_rules_text(UNREACHABLE, name="g")
    assert g.nonterminals == ["S", "A", "B"] and {r.lhs for r in g.rules} == {"S", "A", "B"} and len(g.rules) == 5
    assert g.rules_for("U") == [] and g.level_of("U") == -1
    assert g.terminals == ["a", "b", "z"]  # the vocabulary (token ids) does not depend on reachability
    # Pruned once: the saved grammar reloads without a warning and with the same fingerprint.
    g.save(tmp_path / "g.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Grammar.load(tmp_path / "g.json").fingerprint() == g.fingerprint()
    (tmp_path / "g.txt").write_text(UNREACHABLE)
    with pytest.warns(UserWarning, match="pruned 2 nonterminals"):
        assert Grammar.load(tmp_path / "g.txt").nonterminals == ["S", "A", "B"]


def test_strict_refuses_unreachable_nonterminals_in_one_line(tmp_path):
    with pytest.raises(GrammarError, match=r"nonterminal 'U' is unreachable from the start symbol 'S' \(2 unreachable in all") as e:
        parse_rules_text(UNREACHABLE, strict=True)
    assert "\n" not in str(e.value)
    d = _base()
    d["nonterminals"].append("U")
    d["rules"].append({"lhs": "U", "rhs": ["a"], "prob": 1.0})
    with pytest.raises(GrammarError, match=r"'U' is unreachable"):
        Grammar.from_dict(d, strict=True)
    (tmp_path / "g.json").write_text(json.dumps(d))
    with pytest.raises(GrammarError, match=r"'U' is unreachable"):
        Grammar.load(tmp_path / "g.json", strict=True)
    with pytest.warns(UserWarning, match=r"pruned 1 nonterminals unreachable from 'S' \(and 1 rules\)"):
        assert Grammar.from_dict(d).nonterminals == ["S", "A"]


def test_leveled_grammars_still_refuse_unreachable_nonterminals():
    d = _base()
    d["nonterminals"].append("U")
    d["rules"].append({"lhs": "U", "rhs": ["a"], "prob": 1.0})
    d["levels"] = [{"symbols": ["S"]}, {"symbols": ["A", "U"]}]
    with pytest.raises(GrammarError, match=r"^nonterminal 'U' is unreachable from the start symbol 'S'$"):
        Grammar.from_dict(d)


def test_validate_command_prunes_or_refuses_with_strict(tmp_path, capsys):
    p = tmp_path / "cfg3e1.txt"
    p.write_text(UNREACHABLE)
    assert run_guarded(pcfg_main, ["validate", str(p)], "metacond pcfg") == 0
    out, err = capsys.readouterr()
    assert f"{p}: ok, grammar 'cfg3e1': plain, 3 nonterminals" in out
    assert err.strip() == f"{p}: warning: grammar 'cfg3e1': pruned 2 nonterminals unreachable from 'S' (and 3 rules)"
    assert run_guarded(pcfg_main, ["validate", "--strict", str(p)], "metacond pcfg") == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith(f"{p}: error: nonterminal 'U' is unreachable from the start symbol 'S'")  # validate names the file


FINGERPRINT_TEXT = "S -> A B [0.7] | B A [0.3]\nA -> a | b a | b\nB -> b [0.25] | a B [0.75]\n"


def test_fingerprint_is_the_same_from_text_and_from_json(tmp_path):
    t = parse_rules_text(FINGERPRINT_TEXT, name="from-text")
    (tmp_path / "g.txt").write_text(FINGERPRINT_TEXT)
    t.save(tmp_path / "g.json")
    assert Grammar.load(tmp_path / "g.txt").fingerprint() == Grammar.load(tmp_path / "g.json").fingerprint() == t.fingerprint()
    # Written by hand: other name, a generator note, rules shuffled, uniform alternatives without
    # 'prob', one rhs as a string, probabilities formatted differently.
    hand = {
        "schema": "metacond.pcfg/v1", "name": "by-hand", "generator": {"source": "cfg3 paper"}, "start": "S",
        "terminals": ["a", "b"], "nonterminals": ["S", "A", "B"],
        "rules": [
            {"lhs": "B", "rhs": ["a", "B"], "prob": 0.750},
            {"lhs": "A", "rhs": "b"},
            {"lhs": "S", "rhs": ["B", "A"], "prob": 3e-1},
            {"lhs": "A", "rhs": ["a"]},
            {"lhs": "B", "rhs": ["b"], "prob": 0.25},
            {"lhs": "S", "rhs": ["A", "B"], "prob": 0.7000000000000001},
            {"lhs": "A", "rhs": ["b", "a"]},
        ],
    }
    assert Grammar.from_dict(hand).fingerprint() == t.fingerprint()
    # Partly given probabilities: the others share what is left, in JSON as in text.
    part = parse_rules_text("S -> A B [0.5] | B A | A A\nA -> a\nB -> b")
    pj = {"start": "S", "terminals": ["a", "b"], "nonterminals": ["S", "A", "B"],
          "rules": [{"lhs": "S", "rhs": "A A"}, {"lhs": "S", "rhs": "A B", "prob": 0.5}, {"lhs": "S", "rhs": "B A"},
                    {"lhs": "A", "rhs": "a"}, {"lhs": "B", "rhs": "b"}]}
    assert Grammar.from_dict(pj).fingerprint() == part.fingerprint()
    # Content changes do change it: a probability, the terminal order (token ids).
    hand["rules"][0]["prob"], hand["rules"][4]["prob"] = 0.7, 0.3
    assert Grammar.from_dict(hand).fingerprint() != t.fingerprint()
    assert parse_rules_text(FINGERPRINT_TEXT.replace("[0.7]", "[0.69]").replace("[0.3]", "[0.31]")).fingerprint() != t.fingerprint()
    swapped = dict(json.loads(t.to_json()), terminals=["b", "a"])
    assert Grammar.from_dict(swapped).fingerprint() != t.fingerprint()


def test_fingerprint_treats_an_omitted_prior_as_uniform():
    g = preset_grammar("tiny")
    d = g.to_dict()
    assert all("prior" not in lv for lv in d["levels"])
    for lv in d["levels"]:
        lv["prior"] = [1.0 / lv["variants"]] * lv["variants"]
    assert Grammar.from_dict(d).fingerprint() == g.fingerprint()
    d["levels"][0]["prior"] = [0.4, 0.6]
    assert Grammar.from_dict(d).fingerprint() != g.fingerprint()
