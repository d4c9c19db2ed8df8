"""The GPU runner's time plan: which stages run, with what arguments, and how many minutes each may take.

Stage minutes on a GPU are estimates (no GPU has run this yet): startup (imports, model build, the
in-process matmul peak) is ~0.3 min per bench; torch.compile adds ~0.5-1 min. The study's training
steps are not fixed here but computed when it starts, from the minutes left and the tokens/s the
pcfg-paper bench measured (``study_steps``), so an overrunning bench shortens training instead of
dropping the evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BENCH = "benchmarks/bench_gpu_mfu.py"
MIN_TRAIN_MINUTES_PER_MODEL = 1.0


@dataclass(frozen=True)
class Stage:
    name: str
    minutes: float  # the stage is killed after this many minutes (the study: whatever is left before collect)
    argv: tuple = ()  # arguments after `python`
    json_name: str | None = None  # a bench stage's result file


@dataclass(frozen=True)
class StudyBudget:
    """How the study's minutes split; training gets what data building and evaluation leave."""

    preset: str
    depths: tuple
    seeds: int  # training runs per D_M: the steps per model divide the training minutes by depths x seeds
    data_minutes: float  # data build (500k sequences for `paper`) + held-out Bayes references
    eval_minutes: float  # loss, probes, grammar-accuracy generation for every model
    batch_size: int  # the preset's per-step sequences
    padded_tokens: int  # padded row length of a batch (`paper` grammar: longest of 64 sequences ~248 tokens incl. prefix)
    max_steps: int  # the preset's own steps: never more
    min_steps: int = 20
    # Study batches are padded and smaller than the bench's packed ones, and the Trainer logs/saves:
    # assume this share of the bench's tokens/s per padded token (an estimate, to be replaced once measured).
    efficiency: float = 0.7
    fallback_tokens_per_s: float = 150_000.0  # pcfg-paper at ~20% MFU, used when the bench did not report


@dataclass(frozen=True)
class LocalizationBudget:
    """The localization study's stage: its preset (every arm x seeds) on the corpus given with --news_input."""

    preset: str
    minutes: float


@dataclass(frozen=True)
class Plan:
    device: str
    budget_minutes: float
    setup_minutes: float
    benches: tuple
    study: StudyBudget
    localization: LocalizationBudget
    collect_minutes: float = 0.5
    notes: tuple = field(default_factory=tuple)

    @property
    def study_minutes(self) -> float:
        return (self.budget_minutes - self.setup_minutes - sum(b.minutes for b in self.benches) - self.localization.minutes
                - self.collect_minutes)

    def lines(self) -> list[str]:
        s = self.study
        train = self.study_minutes - s.data_minutes - s.eval_minutes
        rows = [("setup (install wheels, metacond)", self.setup_minutes)] + [(b.name, b.minutes) for b in self.benches]
        rows.append((f"localization-study --preset {self.localization.preset} (--news_input)", self.localization.minutes))
        rows.append((f"pcfg-study --preset {s.preset} (D_M {' '.join(map(str, s.depths))} x {s.seeds} seeds)", self.study_minutes))
        rows.append(("collect small files into --out", self.collect_minutes))
        out = [f"time plan ({self.device}, budget {self.budget_minutes:.1f} min):"]
        out += [f"  {name:<48} {m:5.2f} min" for name, m in rows]
        out.append(f"  {'total':<48} {sum(m for _, m in rows):5.2f} min")
        models = len(s.depths) * s.seeds
        out.append(f"  study split (estimate): data ~{s.data_minutes:.1f}, training ~{train:.1f} ({models} models x "
                   f"{train / models:.1f}), evaluation ~{s.eval_minutes:.1f}; steps computed at its start from the minutes left")
        notes = list(self.notes)
        if train / models < MIN_TRAIN_MINUTES_PER_MODEL:
            notes.append(f"the PCFG study gets {train / models:.1f} min per model (under {MIN_TRAIN_MINUTES_PER_MODEL}): its verdicts will mean "
                         "little; give it a lease of its own (--stages study) or a larger --budget_minutes")
        return out + [f"  note: {n}" for n in notes]


def bench_stage(size: str, block: int, batch: int, compile_: bool, minutes: float, extra: tuple = ()) -> Stage:
    tag = f"{size}-b{block}-{'compiled' if compile_ else 'eager'}"
    argv = (BENCH, "--size", size, "--block-size", str(block), "--batch", str(batch), "--attn", "sdpa", *extra) + (("--compile",) if compile_ else ())
    return Stage(name=f"bench {tag}", minutes=minutes, argv=argv, json_name=f"mfu-{tag}.json")


def gpu_plan(budget_minutes: float = 24.0) -> Plan:
    # pcfg-paper: 256 documents of ~128 tokens -> ~64 blocks of 512 (~32k tokens) per step, enough work per
    # step that Python overhead does not set the MFU. 0.5b: 32 documents of ~512 tokens -> ~8 blocks of 2048.
    common = ("--steps", "30", "--warmup", "10")
    benches = (bench_stage("pcfg-paper", 512, 256, False, 1.0, common),
               bench_stage("pcfg-paper", 512, 256, True, 1.75, common),
               bench_stage("0.5b", 2048, 32, False, 1.25, common + ("--vocab", "32000")),
               bench_stage("0.5b", 2048, 32, True, 2.0, common + ("--vocab", "32000")))
    study = StudyBudget(preset="paper", depths=(0, 5), seeds=3, data_minutes=2.5, eval_minutes=8.0, batch_size=64, padded_tokens=248, max_steps=20_000)
    # Localization first: its preset is small (4 arms x 3 seeds of a 10M model on ~4M tokens) and answers the study whose CPU run
    # sits closest to its regime; the PCFG study takes the minutes left.
    return Plan(device="gpu", budget_minutes=budget_minutes, setup_minutes=0.5, benches=benches, study=study,
                localization=LocalizationBudget(preset="gpu", minutes=6.0),
                notes=("stage minutes are estimates until a GPU has run this",))


def dry_plan(budget_minutes: float = 6.0) -> Plan:
    """The same stages at plumbing size on CPU: tiny model, no compile (inductor's C++ build alone takes minutes here)."""
    common = ("--steps", "4", "--warmup", "1", "--cpu", "--peak-matmul", "256", "--peak-reps", "2")
    benches = (bench_stage("tiny", 64, 8, False, 1.0, common), bench_stage("tiny", 128, 4, False, 1.0, common))
    study = StudyBudget(preset="smoke", depths=(0, 5), seeds=1, data_minutes=0.5, eval_minutes=1.5, batch_size=16, padded_tokens=48, max_steps=40,
                        efficiency=1.0, fallback_tokens_per_s=20_000.0)
    return Plan(device="cpu dry run", budget_minutes=budget_minutes, setup_minutes=0.25, benches=benches, study=study,
                localization=LocalizationBudget(preset="smoke", minutes=2.0),
                notes=("plumbing only: tiny sizes, compile off, numbers mean nothing",))


def study_steps(s: StudyBudget, minutes_left: float, bench_tokens_per_s: float | None) -> tuple[int, dict]:
    """Training steps per model that fit ``minutes_left`` (data, evaluation and a 10% margin taken off first)."""
    tps = bench_tokens_per_s or s.fallback_tokens_per_s
    train_s = max(0.0, (minutes_left - s.data_minutes - s.eval_minutes) * 60 * 0.9) / (len(s.depths) * s.seeds)
    step_s = s.batch_size * s.padded_tokens / (tps * s.efficiency)
    steps = int(min(s.max_steps, max(s.min_steps, train_s / step_s)))
    return steps, {"tokens_per_s_assumed": tps, "from_bench": bench_tokens_per_s is not None, "train_seconds_per_model": round(train_s, 1),
                   "step_seconds_estimate": step_s, "max_steps": steps, "preset_max_steps": s.max_steps}
