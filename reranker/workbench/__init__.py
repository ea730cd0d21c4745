"""Everything the Streamlit pages share.

`frame`, `widgets`, `job_panel`, `session_panel` and `run_models` draw with Streamlit; `results`, `charts`,
`comparison`, `explanation_view`, `batch_scoring`, `scoring_steps`, `score_cache`, `saved_sessions`, `presets` and
`backend_openings` do not, so tests reach them without a page. The pages score through a backend (reranker.core),
which may be a sidecar reached over HTTP (reranker.remote); nothing here imports FastAPI or the sidecar's code.
"""

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets"
"""The repository's assets folder: style, logo, sample sets."""
