"""One query and its documents in several runs (a model and an instruction each): ranks side by side, agreement,
label metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import pandas as pd

from reranker.analysis.ranking_metrics import kendall_tau, label_metrics, metric_text, top_k_overlap
from reranker.core.prompt import resolve_instruction
from reranker.core.ranking import RankedDocument
from reranker.formats.documents import ParsedDocuments
from reranker.formats.exports import Record, export_records

BEST_MARK = "★"


@dataclass(frozen=True)
class CompareRun:
    """One run of a comparison: a model and an instruction, and the ranking they gave."""

    name: str
    """A short name for tables and charts, e.g. "A"."""
    instruction: str
    ranked: list[RankedDocument]
    """Every document, best first."""
    model: str = ""
    where: str = ""
    """Where the model ran: "in this process", or "server <address>" (Capabilities.where)."""

    def rank_of(self) -> list[int]:
        """Each document's rank, in input order."""
        ranks = [0] * len(self.ranked)
        for d in self.ranked:
            ranks[d.index] = d.rank
        return ranks

    def logits(self) -> list[float]:
        """Each document's log-odds, in input order."""
        out = [0.0] * len(self.ranked)
        for d in self.ranked:
            out[d.index] = d.logit
        return out

    def order(self) -> list[int]:
        return [d.index for d in self.ranked]


@dataclass(frozen=True)
class Comparison:
    """One Compare press: the query, its documents and their ranking in each run."""

    query: str
    parsed: ParsedDocuments
    runs: list[CompareRun]
    passage_tokens: int | None = None
    """Documents were read as passages of this many tokens (None: whole)."""

    def asked(self, runs: Sequence[tuple[str, str]], query: str, parsed: ParsedDocuments,
              passage_tokens: int | None = None) -> bool:
        """Whether these inputs, (model, instruction) per run, are the ones this comparison answers."""
        return (([(m, resolve_instruction(i)) for m, i in runs], query, parsed.documents, passage_tokens)
                == ([(run.model, run.instruction) for run in self.runs], self.query, self.parsed.documents,
                    self.passage_tokens))

    def records(self) -> list[Record]:
        """Every run's ranking, one after the other, as exported rows (the instruction tells the runs apart)."""
        return [row for run in self.runs
                for row in export_records(run.ranked, self.query, run.instruction, run.model, self.parsed.labels)]

    def top_k_union(self, k: int) -> list[int]:
        """Documents in the top k of at least one instruction, in input order."""
        return sorted({d.index for run in self.runs for d in run.ranked[:k]})


def rank_table(runs: Sequence[CompareRun], documents: Sequence[str],
               labels: Sequence[float] | None = None) -> pd.DataFrame:
    """One row per document in input order: its rank and score under each instruction, then its text (the numbers
    first, so they stay in view on a narrow screen)."""
    frame = pd.DataFrame({"input #": range(1, len(documents) + 1)})
    if labels is not None:
        frame["label"] = list(labels)
    for run in runs:
        frame[f"rank {run.name}"] = run.rank_of()
    for run in runs:
        scores = [0.0] * len(documents)
        for d in run.ranked:
            scores[d.index] = d.score
        frame[f"score {run.name}"] = scores
    frame["text"] = list(documents)
    return frame


def agreement_table(runs: Sequence[CompareRun], k: int) -> pd.DataFrame:
    """Each pair of instructions: Kendall tau of their rankings and the overlap of their top k."""
    rows = [{"runs": f"{a.name} vs {b.name}", "Kendall tau": kendall_tau(a.rank_of(), b.rank_of()),
             f"top-{k} overlap": top_k_overlap(a.order(), b.order(), k)}
            for a, b in combinations(runs, 2)]
    return pd.DataFrame(rows, columns=["runs", "Kendall tau", f"top-{k} overlap"])


def metrics_table(runs: Sequence[CompareRun], labels: Sequence[float], k: int) -> pd.DataFrame:
    """NDCG@k, MRR and Hit@1 per instruction; the best (by NDCG@k, then MRR, then Hit@1) get a ★, every one of them
    when several tie."""
    rows = []
    for run in runs:
        ranked_labels = [labels[d.index] for d in run.ranked]
        rows.append({"run": run.name, **label_metrics(ranked_labels, k)})
    frame = pd.DataFrame(rows)
    keys = [f"NDCG@{k}", "MRR", "Hit@1"]
    top = max((tuple(round(r[m], 9) for m in keys) for r in rows), default=None)
    frame["best"] = [BEST_MARK if tuple(round(r[m], 9) for m in keys) == top else "" for r in rows]
    return frame


def best_text(metrics: pd.DataFrame, k: int) -> str:
    """One line on which instruction did best against the labels, or that several tie."""
    best = metrics[metrics["best"] != ""]
    first = best.iloc[0]
    scores = (f"NDCG@{k} {metric_text(f'NDCG@{k}', first[f'NDCG@{k}'])}, MRR {metric_text('MRR', first['MRR'])}, "
              f"Hit@1 {metric_text('Hit@1', first['Hit@1'])}")
    if len(best) == 1:
        return f"Best: run {first['run']} ({scores})."
    names = ", ".join(best["run"].iloc[:-1]) + f" and {best['run'].iloc[-1]}"
    return f"Tie: runs {names} do equally well ({scores}); the labels do not tell them apart."
