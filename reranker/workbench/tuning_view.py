"""The Tune page's plain parts: the calibration's figures and reliability diagram, and the fine-tuning job, a
`python -m reranker finetune` subprocess under the data folder whose state is a small JSON file there, so a reloaded
page (or another browser tab) finds it running or done (docs/TUNE.md, docs/UI.md).

The job is the command itself, not a copy of it: its log is what the command prints, read back for the progress
line and the training loss; at the end its DIR/evaluation.json gives the before/after table.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from reranker.core.addresses import is_server
from reranker.core.environment import SERVER_KEY

BEFORE_COLOR = "#9aa5b1"
AFTER_COLOR = "#0b6e4f"
JOB_FILE = "job.json"
"""The job's state, in the tune folder of the data folder."""
PROGRESS = re.compile(r"epoch (\d+)/(\d+), step ([\d,]+)/([\d,]+), loss ([\d.naninf]+), about ([\d,]+) s left")
SAID = re.compile(r"^\d+ labelled queries: |each relevant pair weighs|^held-out loss before and after|^evaluating the ")
_CHILDREN: dict[int, subprocess.Popen] = {}
"""The jobs this process started, polled so a finished one is not left a zombie."""


def tune_folder(data: Path) -> Path:
    return data / "tune"


def tuned_models(data: Path) -> list[str]:
    """The folders fine-tuned from the Tune page that finished (their evaluation.json written), newest first: offered
    wherever models are chosen."""
    models = tune_folder(data.resolve()) / "models"
    done = [p for p in models.glob("*") if (p / "evaluation.json").is_file()] if models.is_dir() else []
    return [str(p) for p in sorted(done, key=lambda p: p.name, reverse=True)]


def calibration_table(document: Mapping) -> pd.DataFrame:
    """ECE and Brier before and after the calibration (cross-validated by query), as CAL.json holds them."""
    return pd.DataFrame({"measure": ["ECE", "Brier"],
                         "before": [document["ece_before"], document["brier_before"]],
                         "after": [document["ece_after"], document["brier_after"]]})


def reliability_figure(document: Mapping) -> go.Figure:
    """Predicted probability against the fraction relevant in each bin, before and after, with the diagonal where a
    calibrated model's bins lie; a marker's size is its bin's pairs."""
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                                line={"color": "#888888", "dash": "dash"}, hoverinfo="skip"))
    for name, color in (("before", BEFORE_COLOR), ("after", AFTER_COLOR)):
        bins = [b for b in document["reliability"][name] if b["pairs"]]
        most = max((b["pairs"] for b in bins), default=1)
        figure.add_trace(go.Scatter(
            x=[b["mean_probability"] for b in bins], y=[b["fraction_relevant"] for b in bins], mode="lines+markers",
            name=f"{name} calibration", line={"color": color},
            marker={"size": [8 + 14 * (b["pairs"] / most) ** 0.5 for b in bins], "color": color},
            customdata=[[b["low"], b["high"], b["pairs"]] for b in bins],
            hovertemplate="P %{customdata[0]:.1f}–%{customdata[1]:.1f}: %{customdata[2]} pairs<br>"
                          "mean predicted %{x:.3f}, relevant %{y:.3f}<extra></extra>"))
    figure.update_layout(xaxis={"title": "predicted P(relevant)", "range": [-0.03, 1.03]},
                         yaxis={"title": "fraction relevant", "range": [-0.05, 1.08]},
                         height=380, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                         legend={"orientation": "h", "y": 1.1})
    return figure


class TuneCommandFailed(ValueError):
    """The command refused or failed; the message is its own (`error: …`)."""


def run_calibrate(dataset: Path, run: Path | None, address: str, key: str | None, top_k: int, method: str,
                  store: Path, output: Path) -> dict:
    """`python -m reranker calibrate` on the page's model (or server), waited for; CAL.json's document, or
    TuneCommandFailed with the command's message. A subprocess, as the workbench runs the commands and does not
    import them (the layers: docs/ARCHITECTURE.md)."""
    command = [sys.executable, "-m", "reranker", "calibrate", str(dataset), "--method", method, "--output",
               str(output), "--top-k", str(top_k), "--store", str(store),
               "--server" if is_server(address) else "--model", address, *(["--run", str(run)] if run else [])]
    environment = {**os.environ, **({SERVER_KEY.name: key} if key else {})}  # a key never on a command line
    done = subprocess.run(command, capture_output=True, text=True, env=environment, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise TuneCommandFailed(error_of(done.stderr) or done.stderr.strip()[-2000:] or
                                f"calibrate stopped with status {done.returncode}")
    return json.loads(output.read_text(encoding="utf-8"))


@dataclass
class TuneJob:
    """A fine-tuning run started from the page: what the state file holds."""

    output: str
    log: str
    exit_file: str
    pid: int
    started: float
    base: str
    dataset: str

    @property
    def exit_code(self) -> int | None:
        try:
            return int(Path(self.exit_file).read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return None

    @property
    def running(self) -> bool:
        child = _CHILDREN.get(self.pid)
        if child is not None:
            child.poll()
        if self.exit_code is not None:
            return False
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        return True

    def log_text(self) -> str:
        try:
            return Path(self.log).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def evaluation(self) -> dict | None:
        """DIR/evaluation.json once the command wrote it."""
        try:
            return json.loads((Path(self.output) / "evaluation.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None


def start_finetune(data: Path, dataset: Path, base: str, arguments: Sequence[str]) -> TuneJob:
    """`python -m reranker finetune DATASET --model BASE --output DIR ARGUMENTS…` in the background, in its own session
    (it outlives a reload and the page), its output in a log and its exit status in a file beside it."""
    folder = tune_folder(data.resolve())
    stamp = time.strftime("%Y%m%d-%H%M%S")
    output = folder / "models" / f"tuned-{stamp}"
    output.parent.mkdir(parents=True, exist_ok=True)
    log, exit_file = folder / f"finetune-{stamp}.log", folder / f"finetune-{stamp}.exit"
    command = [sys.executable, "-m", "reranker", "finetune", str(dataset), "--model", base, "--output", str(output),
               *arguments]
    script = f"{shlex.join(command)} > {shlex.quote(str(log))} 2>&1; echo $? > {shlex.quote(str(exit_file))}"
    child = subprocess.Popen(["/bin/sh", "-c", script], start_new_session=True, stdin=subprocess.DEVNULL)
    _CHILDREN[child.pid] = child
    job = TuneJob(str(output), str(log), str(exit_file), child.pid, time.time(), base, str(dataset))
    (folder / JOB_FILE).write_text(json.dumps(asdict(job), indent=1), encoding="utf-8")
    return job


def current_job(data: Path) -> TuneJob | None:
    """The last job started under this data folder, if any."""
    try:
        return TuneJob(**json.loads((tune_folder(data) / JOB_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def forget_job(data: Path) -> None:
    (tune_folder(data) / JOB_FILE).unlink(missing_ok=True)


@dataclass
class Progress:
    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    seconds_left: int


def progress_lines(log: str) -> list[Progress]:
    """Every progress line the command printed (it rewrites one line with \\r after each step)."""
    return [Progress(int(m[1]), int(m[2]), int(m[3].replace(",", "")), int(m[4].replace(",", "")), float(m[5]),
                     int(m[6].replace(",", "")))
            for m in PROGRESS.finditer(log)]


def error_of(log: str) -> str | None:
    """The command's own message when it refused or failed (`error: …`), else None."""
    found = [line[len("error: "):] for line in log.replace("\r", "\n").splitlines() if line.startswith("error: ")]
    return found[-1] if found else None


def said_lines(log: str) -> list[str]:
    """What the command said of the training: the split, the balance of the classes, the held-out losses (not the
    libraries' loading bars and warnings in the same log)."""
    return [line.strip() for line in log.replace("\r", "\n").splitlines() if SAID.search(line)]


def loss_figure(steps: Sequence[Progress], evaluation: Mapping | None) -> go.Figure:
    """The training loss (the epoch's running mean after each step) and, once done, the held-out loss before training
    and after each epoch."""
    figure = go.Figure()
    if steps:
        per_epoch = max(1, steps[-1].steps // max(1, steps[-1].epochs))
        figure.add_trace(go.Scatter(x=[p.step / per_epoch for p in steps], y=[p.loss for p in steps],
                                    mode="lines+markers", name="training loss (epoch's mean so far)",
                                    line={"color": AFTER_COLOR}))
    held = (evaluation or {}).get("training", {}).get("held_out_losses") or []
    if held:
        figure.add_trace(go.Scatter(x=list(range(len(held))), y=held, mode="lines+markers",
                                    name="held-out loss", line={"color": "#c05621", "dash": "dot"}))
    figure.update_layout(xaxis={"title": "epoch"}, yaxis={"title": "loss (binary cross-entropy)"}, height=320,
                         margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h", "y": 1.15})
    return figure


def before_after_table(evaluation: Mapping) -> pd.DataFrame:
    """The held-out queries' measures, base and tuned, with the paired test."""
    rows = []
    for name, test in evaluation["significance"].items():
        p = test["p_value"]
        rows.append({"measure": name, "base": evaluation["base"][name], "tuned": evaluation["tuned"][name],
                     "change": test["tuned_minus_base"], "p (paired t)": p,
                     "significant": "★" if test["significant_at_0.05"] else ""})
    return pd.DataFrame(rows)
