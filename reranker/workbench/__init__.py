"""Everything the Streamlit pages share.

Drawn with Streamlit: `frame`, `widgets`, `job_panel`, `session_panel`, `draft_panel`, `run_models`,
`table_upload`, `dataset_upload`; and `broken_text`, which has Streamlit's server read text a browser sends broken.
Plain Python, so tests reach them without a page: `backend_openings`, `batch_scoring`, `charts`, `code_snippets`,
`comparison`, `depth_view`, `document_blocks`, `drafts`, `evaluation_view`, `explanation_view`, `presets`, `results`,
`saved_sessions`, `scoring_steps`, `tuning_view`, `verification_view`.

The pages score through a backend (reranker.core), which may be a sidecar reached over HTTP (reranker.remote);
nothing here imports FastAPI or the sidecar's code.
"""

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets"
"""The repository's assets folder: style, logo, sample sets."""
