"""One lm-eval document per question: its option orders become requests of that document, not documents of their own.

lm-eval's standard error of a ``mean`` metric treats documents as independent items. A question asked under its 4
cyclic option orders as 4 documents is one item counted 4 times, and the reported error comes out about half of
the per-question bootstrap's. Here a document is a question; ``QuestionTask.construct_requests`` emits every order's
requests, and ``question_results`` returns the question's accuracy averaged over its orders, so lm-eval's own
stderr is the per-question one.

Requests of a prompt that ends in whitespace (the ``official`` prompt ends in a newline; chat templates end in
their generation prompt) are scored the reference's way: log p(option | whole prompt). lm-eval moves a context's
trailing whitespace into the continuation, so each such prompt gets one more request — the whitespace alone — whose
log-likelihood is subtracted from every option's (``ll(sep + option) - ll(sep)``). The per-token rule divides by
the option's own tokens (``doc['ntok']``: the option tokenized alone, as the reference counts them).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from metacond.eval_tasks.localnews.scoring import argmax_first, rotate, rotated_gold  # absolute: lm-eval loads this file standalone

# lm-eval metric name -> how each option's log-likelihood is normalized before the argmax.
LOGLIK_METRICS = {"acc": "sum", "acc_norm": "chars", "acc_bytes": "bytes", "acc_tokens": "tokens"}


def _split(context: str) -> tuple[str, str]:
    base = context.rstrip()
    return base, context[len(base):]


def plan_requests(doc: dict[str, Any], render: Callable[[str, dict[str, Any]], str] | None = None) -> tuple[list[tuple[str, str]], list[bool]]:
    """(request (context, continuation) pairs in order, whether each prompt got a separator request first)."""
    pairs, seps = [], []
    for prompt, conts in zip(doc["prompts"], doc["continuations"]):
        base, sep = _split(render(prompt, doc) if render else prompt + doc["suffix"])
        if sep:
            pairs.append((base, sep))
        pairs += [(base, sep + c) for c in conts]
        seps.append(bool(sep))
    return pairs, seps


def option_lls(doc: dict[str, Any], lls: Sequence[float], seps: Sequence[bool]) -> list[list[float]]:
    """Per order, each slot's log p(option | prompt): the separator's log-likelihood taken off where there is one."""
    n = len(doc["options"])
    out, i = [], 0
    for sep in seps:
        base = lls[i] if sep else 0.0
        i += int(sep)
        out.append([lls[i + k] - base for k in range(n)])
        i += n
    if doc["shared_prompt"]:  # one prompt for every order: the requests are the file's options, rotated here
        file_lls = out[0]
        out = [[file_lls[(s + r) % n] for s in range(n)] for r in doc["orders"]]
    return out


def _norm(kind: str, ll: float, text: str, ntok: int | None) -> float:
    if kind == "chars":
        return ll / max(1, len(text))
    if kind == "bytes":
        return ll / max(1, len(text.encode("utf-8")))
    if kind == "tokens":
        return ll / max(1, ntok or 0)
    return ll


def order_predictions(doc: dict[str, Any], per_order: list[list[float]], kind: str) -> list[tuple[int, int]]:
    """(predicted slot, gold slot) under each order, for one normalization of the option log-likelihoods."""
    n = len(doc["options"])
    if kind == "tokens" and not doc.get("ntok"):
        raise ValueError("the per-token rule needs the option token counts: load the questions with the model's tokenizer (pretrained=…)")
    out = []
    for r, lls in zip(doc["orders"], per_order):
        opts = [doc["options"][(s + r) % n] for s in range(n)]
        ntok = [doc["ntok"][(s + r) % n] for s in range(n)] if doc.get("ntok") else [None] * n
        out.append((argmax_first([_norm(kind, ll, o, t) for ll, o, t in zip(lls, opts, ntok)]), rotated_gold(doc["gold_in_file"], r, n)))
    return out


# metacond eval's named scoring rules (scoring.py) as normalizations of the option log-likelihoods.
RULE_KIND = {"sum": "sum", "option_text_avg": "tokens", "byte_norm": "bytes", "option_letter": "sum"}


def rule_predictions(doc: dict[str, Any], results: Sequence[Any], rule: str) -> Sequence[tuple[int | None, int]]:
    """(predicted slot or None, gold slot) under each order of a logged question, for a named rule (``generative``:
    the parsed letter of each order's answer). The requests are the ones built without a chat template."""
    n = len(doc["options"])
    if rule == "generative":
        from metacond.eval_tasks.localnews.utils import parse_answer

        return [(parse_answer(resp, rotate(doc["options"], r)), rotated_gold(doc["gold_in_file"], r, n)) for r, resp in zip(doc["orders"], results)]
    per_order = option_lls(doc, [float(x[0]) for x in results], plan_requests(doc)[1])
    return order_predictions(doc, per_order, RULE_KIND[rule])


def question_results(doc: dict[str, Any], results: Sequence[Any], seps: Sequence[bool]) -> dict[str, Any]:
    """The question's metrics, each averaged over its option orders."""
    if doc["family"] == "gen":
        picks = rule_predictions(doc, results, "generative")
        right = sum(p == g for p, g in picks)
        parsed = sum(p is not None for p, _ in picks)
        return {"acc": right / len(picks), "acc_exclude": (float(right), float(parsed)), "parsed": parsed / len(picks)}
    per_order = option_lls(doc, [float(r[0]) for r in results], seps)
    kinds = ("acc",) if doc["family"] == "letter" else tuple(m for m in LOGLIK_METRICS if m != "acc_tokens" or doc.get("ntok"))
    out = {}
    for metric in kinds:
        picks = order_predictions(doc, per_order, LOGLIK_METRICS[metric])
        out[metric] = sum(p == g for p, g in picks) / len(picks)
    return out


def _passthrough(items):
    return items


def _register_metrics() -> None:
    """lm-eval knows acc_bytes but not acc_tokens: without this it searches the evaluate library and warns."""
    import lm_eval.api.metrics  # noqa: F401  (fills the aggregation registry this lookup reads)
    from lm_eval.api import registry

    try:
        registry.register_metric(metric="acc_tokens", higher_is_better=True, output_type="multiple_choice", aggregation="mean")(_passthrough)
    except ValueError:  # registered already (lm-eval loads this file standalone, metacond imports it as a module)
        pass


def _base():
    _register_metrics()
    from lm_eval.api.task import ConfigurableTask

    return ConfigurableTask


class QuestionTask(_base()):  # type: ignore[misc]  # lm-eval's ConfigurableTask, imported after registering metrics: a dynamic base
    """A ConfigurableTask whose document is a question and whose requests are all its option orders' (see module doc)."""

    def __init__(self, config: dict | None = None):
        self._seps: dict[Any, list[bool]] = {}
        super().__init__(config={k: v for k, v in (config or {}).items() if k != "class"})  # "class" routed lm-eval here

    def construct_requests(self, doc, ctx, **kwargs):
        from lm_eval.api.instance import Instance

        apply_chat_template = kwargs.pop("apply_chat_template", False)
        chat_template = kwargs.pop("chat_template", None)
        render = None
        if apply_chat_template and chat_template is not None:
            def render(prompt, d):
                system = [{"role": "system", "content": d["system"]}] if d.get("system") else []
                return chat_template(system + [{"role": "user", "content": prompt}])
        if doc["family"] == "gen":
            from copy import deepcopy

            prompts = [render(p, doc) if render else p for p in doc["prompts"]]
            return [Instance(request_type="generate_until", doc=doc, arguments=(p, deepcopy(self.config.generation_kwargs)), idx=i, **kwargs)
                    for i, p in enumerate(prompts)]
        pairs, seps = plan_requests(doc, render)
        self._seps[doc["qid"]] = seps
        return [Instance(request_type="loglikelihood", doc=doc, arguments=pair, idx=i, **kwargs) for i, pair in enumerate(pairs)]

    def process_results(self, doc, results):
        seps = self._seps.get(doc["qid"])
        if seps is None:  # requests built elsewhere (another rank): the plan without a chat template
            seps = plan_requests(doc)[1]
        return question_results(doc, results, seps)
