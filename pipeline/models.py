"""Loading the models a run needs, from a package name, a Hugging Face id or a path.

Every reference is resolved locally first (an installed package that bundles its
weights, then a folder), so the defaults work offline; a hub id is passed through
to the library for users who are online.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from .config import RunConfig
from .errors import Errors, ModelError

if TYPE_CHECKING:  # spaCy is imported only where a pipeline is built
    from spacy.language import Language


def resolve_model_path(ref: str) -> str:
    """A folder for ``ref``: a path, or an installed package exposing ``get_model_path()``."""
    if Path(ref).expanduser().exists():
        return str(Path(ref).expanduser())
    module_name = ref.replace("-", "_")
    if module_name.isidentifier():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module = None
        if module is not None and hasattr(module, "get_model_path"):
            return str(module.get_model_path())
    return ref  # a hub id: the library downloads it (online users only)


def load_spacy(ref: str) -> "Language":
    import spacy

    try:
        return spacy.load(ref)
    except Exception as err:  # noqa: BLE001 - missing, incompatible or broken: all "cannot load" to a user
        first = (str(err).splitlines() or [type(err).__name__])[0][:160]
        raise ModelError(Errors.E014, path=ref, detail=f"spaCy pipeline cannot be loaded ({first})") from None


def build_nlp(config: RunConfig) -> "Language":
    """The claims pipeline: base spaCy model + gazetteer ruler + canonicaliser + attribution."""
    from .stages import attribution, claims, entities  # noqa: F401 - registers the factories

    nlp = load_spacy(config.spacy_model)
    entities.add_gazetteers(nlp, entities.gazetteer_files(config.gazetteers))
    nlp.add_pipe("divergence_canonicalizer")
    nlp.add_pipe("divergence_attribution")
    return nlp


@dataclass
class Encoder:
    """Sentence embeddings (L2-normalised) for alignment."""

    name: str
    model: object

    @classmethod
    def load(cls, ref: str) -> "Encoder":
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a weight-loading bar per process is noise in a report run
        path = resolve_model_path(ref)
        try:
            model = SentenceTransformer(path, device="cpu")
        except Exception as err:  # noqa: BLE001 - any loader failure is a missing model to the user
            raise ModelError(Errors.E014, path=ref, detail=f"sentence encoder cannot be loaded ({type(err).__name__}: {str(err)[:160]})") from None
        return cls(name=ref, model=model)

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        vectors = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return vectors.astype(np.float32)
