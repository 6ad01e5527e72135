"""Loading the models a run needs, from a package name, a Hugging Face id or a path.

Every reference is resolved locally first (an installed package that bundles its
weights, then a folder), so the defaults work offline; a hub id is passed through
to the library for users who are online.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import RunConfig
from .errors import Errors, ModelError
from .registry import resolve_model_path

if TYPE_CHECKING:  # spaCy is imported only where a pipeline is built
    from spacy.language import Language


def load_spacy(ref: str) -> "Language":
    import spacy

    try:
        return spacy.load(ref)
    except Exception as err:  # noqa: BLE001 - missing, incompatible or broken: all "cannot load" to a user
        first = (str(err).splitlines() or [type(err).__name__])[0][:160]
        raise ModelError(Errors.E014, path=ref, detail=f"spaCy pipeline cannot be loaded ({first})") from None


PIPELINE_CONFIG = Path(__file__).resolve().parent / "data" / "config.cfg"
_META_FROM_BASE = ("lang", "name", "version", "description", "author", "email", "url", "license", "sources")


def build_nlp(config: RunConfig) -> "Language":
    """The claims pipeline, from the shipped ``pipeline/data/config.cfg``.

    The config sources the trained components of the base model (``config.spacy_model``,
    ``--spacy-model``) and adds the gazetteer ruler, canonicaliser, attribution and claim
    detector; ``[initialize]`` then gives those their data (the gazetteers, including
    ``config.gazetteers``, and the cue lexicon) and copies the base model's tokenizer and
    vocabulary. Only the added components are initialised: the sourced ones keep their
    weights. The pipeline's meta names the base model, whose version a report records.
    """
    from spacy import util

    from .stages import attribution, claim_detector, cues, entities  # noqa: F401 - registers factories and readers

    try:
        base = _base_model(config.spacy_model)
        meta = _base_meta(base)
        cfg = util.load_config(PIPELINE_CONFIG, overrides={
            "paths.base_model": base,
            "initialize.components.divergence_gazetteer.patterns.extra": [str(g) for g in config.gazetteers],
        }, interpolate=False)
        sourced = _source_base_components(cfg, meta)
        nlp = util.load_model_from_config(cfg, auto_fill=True, validate=True)
        with nlp.select_pipes(disable=sourced):
            nlp.initialize()
    except ModelError:
        raise
    except Exception as err:  # noqa: BLE001 - missing, incompatible or broken: all "cannot load" to a user
        first = (str(err).splitlines() or [type(err).__name__])[0][:160]
        raise ModelError(Errors.E014, path=config.spacy_model,
                         detail=f"spaCy pipeline cannot be loaded ({first})") from None
    nlp.meta.update({key: meta[key] for key in _META_FROM_BASE if key in meta})
    return nlp


def _base_model(ref: str) -> str:
    """``ref`` as spaCy loads it: a folder (made absolute) or an installed package name."""
    path = Path(ref).expanduser()
    return str(path.resolve()) if path.exists() else ref


def _base_meta(base: str) -> dict:
    from spacy import util

    if Path(base).exists():
        return util.get_model_meta(Path(base))
    if util.is_package(base):
        return util.get_model_meta(util.get_package_path(base))
    from spacy.errors import Errors as SpacyErrors

    raise OSError(SpacyErrors.E050.format(name=base))  # spaCy's own "Can't find model" message


def _source_base_components(cfg, meta: dict) -> list[str]:  # noqa: ANN001 - a confection Config
    """Source the base model's enabled components; where they are not the ones the shipped
    config lists (another kind of base model), its own take their place, in its order,
    with the gazetteer ruler before its NER. Returns the sourced names."""
    disabled = set(meta.get("disabled", ()))
    base = [name for name in meta.get("pipeline", ()) if name not in disabled]
    listed = [name for name in cfg["nlp"]["pipeline"] if "source" in cfg["components"].get(name, {})]
    if base and base != listed:
        ours = [name for name in cfg["nlp"]["pipeline"] if name not in listed and name != "divergence_gazetteer"]
        at = base.index("ner") if "ner" in base else len(base)
        cfg["nlp"]["pipeline"] = [*base[:at], "divergence_gazetteer", *base[at:], *ours]
        for name in listed:
            del cfg["components"][name]
        for name in base:
            cfg["components"][name] = {"source": "${paths.base_model}"}
        listed = base
    return listed


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
