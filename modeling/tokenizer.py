"""Tokenizers built in code, so no run ever downloads one.

The PCFG tokenizer is word-level: one token per terminal, the specials ``<pad> <bos> <eos> <mask>``
and one token per (level, variant) of metadata, ``<m{d}_{k}>``. Metadata tokens are ordinary vocabulary
entries, not special tokens, so ``decode(skip_special_tokens=True)`` keeps them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Sequence

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast


class PcfgSymbols(Protocol):
    """What the PCFG tokenizer needs from a grammar (``metacond.data_builders.pcfg.grammar.Grammar`` has it). A protocol,
    so the modeling layer does not import the builders that sit above it."""

    @property
    def depth(self) -> int: ...

    @property
    def num_variants(self) -> Sequence[int]: ...

    @property
    def terminals(self) -> Sequence[str]: ...

    def max_yield(self) -> int: ...

SPECIALS = ("<pad>", "<bos>", "<eos>", "<mask>")


def metadata_token(level: int, variant: int) -> str:
    return f"<m{level}_{variant}>"


def pcfg_vocab(grammar: PcfgSymbols) -> dict[str, int]:
    """Token -> id: specials, then metadata tokens level by level, then terminals in grammar order."""
    vocab = {t: i for i, t in enumerate(SPECIALS)}
    for d, k in enumerate(grammar.num_variants):
        for v in range(k):
            vocab[metadata_token(d, v)] = len(vocab)
    for t in grammar.terminals:
        vocab[t] = len(vocab)
    return vocab


def build_pcfg_tokenizer(grammar: PcfgSymbols, model_max_length: int | None = None) -> "PreTrainedTokenizerFast":
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = pcfg_vocab(grammar)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<mask>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])])
    if model_max_length is None:
        # Longest possible sequence: <bos>, D metadata slots, yield, <eos>.
        model_max_length = 2 + grammar.depth + grammar.max_yield()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", mask_token="<mask>",
        model_max_length=int(model_max_length), padding_side="right",
    )
    fast.init_kwargs["metacond_tokenizer"] = "pcfg"
    return fast


TEXT_SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>", "<mask>")


def build_text_tokenizer(texts, vocab_size: int = 2000, model_max_length: int = 2048) -> "PreTrainedTokenizerFast":
    """A byte-level BPE tokenizer trained in-process on ``texts`` (no download).

    Byte-level pre-tokenization keeps newlines as their own tokens, so a metadata line such as
    ``COUNTRY: ng\\n`` tokenizes the same alone as inside a document. ``tokenizer(text)`` prepends
    ``<bos>``; builders encode with ``add_special_tokens=False`` and add it themselves.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(TEXT_SPECIALS), initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    # <bos> through the post-processor, as training data begins with it: evaluation harnesses that
    # encode contexts with special tokens (lm-eval) then see what the model was trained on.
    bos_id = tok.token_to_id("<bos>")
    tok.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False),
                                              processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", bos_id)])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
                                   mask_token="<mask>", model_max_length=model_max_length, padding_side="right")
    return fast
