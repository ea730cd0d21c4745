"""Everything the Streamlit pages share.

`frame`, `widgets` and `job_panel` draw with Streamlit; the rest (`results`, `charts`, `comparison`,
`batch_scoring`, `score_cache`, `presets`) is plain Python that tests reach without a page. Nothing here
imports FastAPI: the pages talk to a sidecar over HTTP, through `reranker.sidecar.client`.
"""

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets"
"""The repository's assets folder: style, logo, sample sets."""
