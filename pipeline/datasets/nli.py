"""Public NLI / stance datasets as ``datasets.Dataset`` objects with one schema.

Every loader returns the columns ``premise``, ``hypothesis``, ``label`` (an int
indexing :data:`LABELS`) and ``source`` (the dataset name), plus whatever a
dataset needs for honest evaluation (ANLI's ``round``, FNC-1's ``body_id`` and
``stance``). The data is read from ``../shared/data`` (or ``$DIVERGENCE_DATA``)
at run time and never copied into the project: several licences are
non-commercial.

Only development splits exist here, so :func:`pipeline.datasets.splits.holdout` splits
each of them into a part to train on and a part to report on, deterministically and by
group (the same premise or FNC-1 body never lands on both sides), so a reported figure
never comes from pairs the model has seen.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from datasets import Dataset

from ..config import PROJECT_ROOT
from ..errors import DataError, Errors
from ..schema import ID2LABEL, LABEL2ID, LABELS  # noqa: F401 - the pair classifier's label order

# FNC-1 stance -> NLI label: a body that agrees with the headline entails it, one
# that disagrees contradicts it; "discuss" reports the claim without taking a side.
FNC_STANCE_TO_LABEL: dict[str, str] = {
    "agree": "entailment",
    "disagree": "contradiction",
    "discuss": "neutral",
    "unrelated": "neutral",
}
FNC_STANCES: tuple[str, ...] = ("agree", "disagree", "discuss", "unrelated")

# Review-app divergence types -> NLI label. Every divergence type other than
# agreement means both statements cannot be true as worded.
TYPE_TO_LABEL: dict[str, str] = {
    "agreement": "entailment",
    "unrelated": "neutral",
    "contradiction": "contradiction",
    "quantity": "contradiction",
    "scope": "contradiction",
    "added_condition": "contradiction",
    "attribution": "contradiction",
}

_ANLI_LABELS = {"e": "entailment", "n": "neutral", "c": "contradiction"}


def data_root() -> Path:
    """Where the public datasets live: ``$DIVERGENCE_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("DIVERGENCE_DATA")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data"


def _resolve(path: str | Path | None, default: str) -> Path:
    folder = Path(path) if path is not None else data_root() / default
    if not folder.exists():
        raise DataError(Errors.E050, path=folder, name=default)
    return folder


def _need(file: Path, name: str) -> Path:
    if not file.is_file():
        raise DataError(Errors.E050, path=file, name=name)
    return file


def _frame_to_dataset(frame: pd.DataFrame, source: str) -> Dataset:
    frame = frame.copy()
    frame["source"] = source
    frame["label"] = frame["label"].astype("int64")
    front = ["premise", "hypothesis", "label", "source"]
    frame = frame[front + [c for c in frame.columns if c not in front]]
    return Dataset.from_pandas(frame.reset_index(drop=True), preserve_index=False)


# --------------------------------------------------------------------------- SICK


def load_sick(path: str | Path | None = None) -> Dataset:
    """SICK SemEval-2014 TRAIN + TRIAL (4,934 pairs) from ``SICK_train_trial.txt``.

    ``path`` may be the folder or the file itself.
    """
    root = _resolve(path, "sick")
    file = _need(root / "SICK_train_trial.txt" if root.is_dir() else root, "sick")
    try:
        raw = pd.read_csv(file, sep="\t", dtype=str, keep_default_na=False, quoting=3)
        frame = pd.DataFrame(
            {
                "premise": raw["sentence_A"].str.strip(),
                "hypothesis": raw["sentence_B"].str.strip(),
                "label": raw["entailment_label"].str.lower().map(LABEL2ID),
                "pair_id": raw["pair_ID"],
            }
        )
    except (KeyError, pd.errors.ParserError) as err:
        raise DataError(Errors.E051, path=file, detail=f"{type(err).__name__}: {err}") from err
    if frame["label"].isna().any():
        raise DataError(Errors.E051, path=file, detail="unknown entailment_label value")
    return _frame_to_dataset(frame, "sick")


# --------------------------------------------------------------------------- SNLI

_DETOK = [
    (re.compile(r" ([.,!?;:%)\]}])"), r"\1"),
    (re.compile(r"([(\[{$]) "), r"\1"),
    (re.compile(r" (n't|'s|'re|'ve|'m|'ll|'d)\b", re.I), r"\1"),
    (re.compile(r"\s+"), " "),
]


def detokenize(text: str) -> str:
    """Undo PTB-style spacing ("dog 's toy .") so SNLI looks like the text users feed in."""
    for pattern, repl in _DETOK:
        text = pattern.sub(repl, text)
    return text.strip()


def load_snli(path: str | Path | None = None, split: str = "dev") -> Dataset:
    """SNLI in the e-SNLI line-aligned layout (``s1.<split>.txt``, ``s2...``, ``labels...``)."""
    root = _resolve(path, "snli")
    files = [_need(root / f"{stem}.{split}.txt", "snli") for stem in ("s1", "s2", "labels")]
    columns = [f.read_text(encoding="utf-8").splitlines() for f in files]
    if len({len(c) for c in columns}) != 1:
        raise DataError(
            Errors.E051, path=root, detail=f"s1/s2/labels.{split}.txt have {[len(c) for c in columns]} lines"
        )
    s1, s2, labels = columns
    unknown = {lab.strip() for lab in labels} - set(LABELS)
    if unknown:
        raise DataError(Errors.E051, path=files[2], detail=f"unknown labels {sorted(unknown)}")
    frame = pd.DataFrame(
        {
            "premise": [detokenize(s) for s in s1],
            "hypothesis": [detokenize(s) for s in s2],
            "label": [LABEL2ID[lab.strip()] for lab in labels],
        }
    )
    return _frame_to_dataset(frame, "snli")


def _jsonl_rows(file: Path, make_row: Callable[[dict], dict[str, object] | None]) -> list[dict[str, object]]:
    """``make_row`` over every non-empty line of a JSONL file (None skips a line); a line
    that is not JSON or lacks a field is one error naming the file and the line."""
    rows: list[dict[str, object]] = []
    with file.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = make_row(json.loads(line))
            except (json.JSONDecodeError, KeyError, IndexError, TypeError) as err:
                raise DataError(Errors.E051, path=file, detail=f"line {lineno}: {err!r}") from err
            if row is not None:
                rows.append(row)
    return rows


# --------------------------------------------------------------------------- ANLI


def load_anli(path: str | Path | None = None, rounds: Sequence[str] = ("R1", "R2", "R3")) -> Dataset:
    """ANLI v1.0 dev rounds; ``round`` says which (scores are reported per round)."""
    root = _resolve(path, "anli")
    rows: list[dict[str, object]] = []
    for rnd in rounds:
        rows += _jsonl_rows(_need(root / rnd / "dev.jsonl", "anli"), lambda item, rnd=rnd: {
            "premise": item["context"].strip(), "hypothesis": item["hypothesis"].strip(),
            "label": LABEL2ID[_ANLI_LABELS[item["label"]]], "round": rnd, "uid": item["uid"]})
    return _frame_to_dataset(pd.DataFrame(rows), "anli")


# --------------------------------------------------------------------------- FNC-1

_SENT_SPLIT = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n|\n(?=[A-Z\"'])")


def split_sentences(text: str) -> list[str]:
    """Cheap sentence splitter for news bodies: regex, because spaCy over 1,683 bodies
    costs a minute while a headline only needs the few sentences that overlap it."""
    parts = (p.strip() for p in _SENT_SPLIT.split(text))
    return [p for p in parts if len(p) > 1]


def load_fnc1(path: str | Path | None = None, *, sentences: int = 3) -> Dataset:
    """FNC-1 training stances as NLI pairs: premise = the ``sentences`` body sentences
    most similar to the headline (TF-IDF cosine, kept in body order), hypothesis =
    the headline. Adds ``body_id``, ``stance`` and ``relatedness`` (TF-IDF cosine of
    headline and whole body, which separates "unrelated" from the related stances
    when a 3-way NLI prediction is turned back into an FNC-1 stance)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    root = _resolve(path, "fnc1")
    bodies_file = _need(root / "train_bodies.csv", "fnc1")
    stances_file = root / "train_stances.reconstructed.csv"
    if not stances_file.is_file():
        stances_file = _need(root / "train_stances.csv", "fnc1")
    try:
        bodies = pd.read_csv(bodies_file, dtype={"Body ID": "int64", "articleBody": str})
        stances = pd.read_csv(stances_file, dtype={"Headline": str, "Body ID": "int64", "Stance": str})
        body_text = dict(zip(bodies["Body ID"], bodies["articleBody"].fillna("")))
        stances = stances.drop_duplicates().reset_index(drop=True)
    except (KeyError, ValueError, pd.errors.ParserError) as err:
        raise DataError(Errors.E051, path=stances_file, detail=f"{type(err).__name__}: {err}") from err
    missing = set(stances["Body ID"]) - set(body_text)
    if missing:
        raise DataError(Errors.E051, path=stances_file, detail=f"{len(missing)} Body IDs not in train_bodies.csv")
    unknown = set(stances["Stance"]) - set(FNC_STANCES)
    if unknown:
        raise DataError(Errors.E051, path=stances_file, detail=f"unknown stances {sorted(unknown)}")

    body_ids = sorted(set(stances["Body ID"]))
    body_sents = {bid: split_sentences(body_text[bid]) or [body_text[bid]] for bid in body_ids}
    headlines = stances["Headline"].fillna("").tolist()
    vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True, min_df=1)
    vectorizer.fit([s for bid in body_ids for s in body_sents[bid]] + headlines)
    head_vecs = vectorizer.transform(headlines)
    body_vecs = vectorizer.transform([body_text[bid] for bid in body_ids])
    body_row = {bid: i for i, bid in enumerate(body_ids)}

    premises: list[str] = [""] * len(stances)
    relatedness = np.zeros(len(stances), dtype="float32")
    for bid, group in stances.groupby("Body ID").groups.items():
        rows = np.asarray(group)
        sents = body_sents[bid]
        sent_vecs = vectorizer.transform(sents)
        sims = (head_vecs[rows] @ sent_vecs.T).toarray()  # rows x sentences (tf-idf rows are L2-normed)
        relatedness[rows] = (head_vecs[rows] @ body_vecs[body_row[bid]].T).toarray().ravel()
        for r, row_sims in zip(rows, sims):
            top = sorted(np.argsort(-row_sims, kind="stable")[:sentences])
            premises[r] = " ".join(sents[i] for i in top)

    frame = pd.DataFrame(
        {
            "premise": premises,
            "hypothesis": [h.strip() for h in headlines],
            "label": [LABEL2ID[FNC_STANCE_TO_LABEL[s]] for s in stances["Stance"]],
            "body_id": stances["Body ID"].astype("int64"),
            "stance": stances["Stance"],
            "relatedness": relatedness,
        }
    )
    return _frame_to_dataset(frame, "fnc1")


def fit_relatedness_threshold(relatedness: Sequence[float], stances: Sequence[str]) -> float:
    """The relatedness cut that best separates unrelated from related pairs (on training
    data only; the held-out bodies are scored with it)."""
    rel = np.asarray(relatedness, dtype="float64")
    is_unrelated = np.asarray([s == "unrelated" for s in stances])
    candidates = np.unique(np.round(rel, 3))
    best, best_acc = 0.0, -1.0
    for t in candidates:
        acc = float(np.mean((rel < t) == is_unrelated))
        if acc > best_acc:
            best, best_acc = float(t), acc
    return best


# --------------------------------------------------------------------------- news and politics
#
# Sources closer to what the pipeline reads (two sides' accounts of one event) than
# SICK/SNLI's image captions. Each maps onto the 3-way labels the way the project
# maps its own divergence types (TYPE_TO_LABEL): an account that agrees -> entailment,
# one that disputes -> contradiction, same topic without taking a side -> neutral.

# Emergent: stance of a news headline towards a rumoured claim.
EMERGENT_STANCE_TO_LABEL: dict[str, str] = {"for": "entailment", "against": "contradiction", "observing": "neutral"}
# WiCE: a Wikipedia claim against the sentences it cites. "partially supported" is the
# pipeline's added detail / scope case: the source does not vouch for all of it.
WICE_TO_LABEL: dict[str, str] = {
    "supported": "entailment",
    "partially_supported": "neutral",
    "not_supported": "neutral",
}


def load_mnli(path: str | Path | None = None, parts: Sequence[str] = ("matched", "mismatched")) -> Dataset:
    """MultiNLI 1.0 dev matched + mismatched (government, letters, 9/11 report, slate, ...);
    ``part`` says which. Rows without annotator consensus (label "-") are dropped."""
    root = _resolve(path, "mnli")
    rows: list[dict[str, object]] = []
    for part in parts:
        rows += _jsonl_rows(_need(root / f"multinli_dev_{part}.jsonl", "mnli"), lambda item, part=part: None
                            if item["label"] == "-" else {
                                "premise": item["premise"].strip(), "hypothesis": item["hypothesis"].strip(),
                                "label": LABEL2ID[item["label"]], "part": part})
    return _frame_to_dataset(pd.DataFrame(rows), "mnli")


def load_emergent(path: str | Path | None = None) -> Dataset:
    """Emergent train split: premise = a news article's headline, hypothesis = the rumoured
    claim it reports on; ``claim_id`` groups the hold-out (no claim on both sides)."""
    root = _resolve(path, "emergent")
    file = _need(root / "url-versions-2015-06-14-clean-train.csv" if root.is_dir() else root, "emergent")
    try:
        raw = pd.read_csv(file, dtype=str, keep_default_na=False)
        stance = raw["articleHeadlineStance"].str.strip().str.lower()
        frame = pd.DataFrame({
            "premise": raw["articleHeadline"].str.strip(),
            "hypothesis": raw["claimHeadline"].str.strip(),
            "label": stance.map(lambda s: LABEL2ID.get(EMERGENT_STANCE_TO_LABEL.get(s, ""))),
            "stance": stance,
            "claim_id": raw["claimId"],
        })
    except (KeyError, pd.errors.ParserError) as err:
        raise DataError(Errors.E051, path=file, detail=f"{type(err).__name__}: {err}") from err
    if frame["label"].isna().any():
        bad = sorted(set(frame.loc[frame["label"].isna(), "stance"]))
        raise DataError(Errors.E051, path=file, detail=f"unknown articleHeadlineStance {bad}")
    frame = frame[(frame["premise"] != "") & (frame["hypothesis"] != "")]
    return _frame_to_dataset(frame, "emergent")


_WORD = re.compile(r"[a-z0-9]+")


def _overlap(a: str, b: str) -> float:
    wa, wb = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
    return len(wa & wb) / (len(wb) or 1)


def load_wice(path: str | Path | None = None, *, sentences: int = 3) -> Dataset:
    """WiCE oracle-retrieval chunks (dev): premise = the annotator's supporting sentences
    of the cited article (at most ``sentences``; for a claim with none, the chunk's
    sentences that share most words with it), hypothesis = the Wikipedia claim.
    ``claim_id`` groups the ~3 rows of one claim for the hold-out. Figures on it are
    "oracle retrieval" figures, not WiCE ones (the authors' rule)."""
    root = _resolve(path, "wice")
    file = _need(root / "oracle_chunks" / "claim" / "dev.jsonl" if root.is_dir() else root, "wice")

    def row(item: dict) -> dict[str, object]:
        evidence, meta = item["evidence"], item["meta"]
        position = {idx: i for i, idx in enumerate(meta["chunk_idx"])}
        chosen = [evidence[position[j]] for j in meta.get("oracle_idx", []) if j in position]
        if not chosen:
            ranked = sorted(range(len(evidence)), key=lambda i: -_overlap(evidence[i], item["claim"]))
            chosen = [evidence[i] for i in sorted(ranked[:sentences])]
        return {"premise": " ".join(s.strip() for s in chosen[:sentences]), "hypothesis": item["claim"].strip(),
                "label": LABEL2ID[WICE_TO_LABEL[item["label"]]], "wice_label": item["label"],
                "claim_id": meta["id"]}

    rows = _jsonl_rows(file, row)
    return _frame_to_dataset(pd.DataFrame(rows), "wice")


def load_claimdiff(path: str | Path | None = None) -> Dataset:
    """ClaimDiff train: claim pairs from two outlets' articles on one contentious topic.

    Read like the review app's types: claim B *weakens* claim A (a contrasting account of
    the same matter) -> contradiction; *strengthens* it (supports or adds to it) ->
    entailment, as an agreement is; neither -> neutral. ``relation`` keeps
    weaken/strengthen/neither; ``topic`` groups the hold-out (no topic on both sides)."""
    root = _resolve(path, "claimdiff")
    files = [_need(root / f"ClaimDiff-{kind}-train.json", "claimdiff") for kind in ("strength", "weak")]
    try:
        strength, weak = (json.loads(f.read_text(encoding="utf-8"))["data"] for f in files)
        if len(strength) != len(weak):
            raise ValueError(f"{len(strength)} strength rows but {len(weak)} weak rows")
        rows = []
        for s, w in zip(strength, weak, strict=True):
            if s["pair_id"] != w["pair_id"]:
                raise ValueError(f"pair_id {s['pair_id']!r} != {w['pair_id']!r}: the two files are not aligned")
            if int(w["relation"]) == 1:
                relation, label = "weaken", "contradiction"
            elif int(s["relation"]) == 1:
                relation, label = "strengthen", "entailment"
            else:
                relation, label = "neither", "neutral"
            rows.append({"premise": s["claim_a"].strip(), "hypothesis": s["claim_b"].strip(),
                         "label": LABEL2ID[label], "relation": relation, "topic": s["topic"]})
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise DataError(Errors.E051, path=files[0].parent, detail=f"{type(err).__name__}: {err}") from err
    return _frame_to_dataset(pd.DataFrame(rows), "claimdiff")


def swap_contradictions(ds: Dataset) -> Dataset:
    """The contradiction pairs of ``ds`` with premise and hypothesis swapped.

    Two accounts that part do so in both directions, and the judge reads the pair model
    both ways; stance data (a body disputing a headline) only shows one. Unlike
    :func:`reverse_pairs` nothing else is added: a swapped news "agree" is not a
    reliable entailment nor a reliable neutral."""
    contra = LABEL2ID["contradiction"]
    kept = ds.filter(lambda r: r["label"] == contra)
    source = (ds["source"][0] if len(ds) and "source" in ds.column_names else "pairs") + "_swapped"
    return Dataset.from_dict({
        "premise": kept["hypothesis"],
        "hypothesis": kept["premise"],
        "label": kept["label"],
        "source": [source] * len(kept),
    })


# --------------------------------------------------------------------------- user labels


def load_user_labels(path: str | Path) -> Dataset:
    """Pairs labelled in the review app: JSONL, CSV, Parquet or a saved ``datasets``
    folder with ``premise``, ``hypothesis`` and ``type`` (a divergence type, or
    "unrelated"); ``type`` is mapped to an NLI label with :data:`TYPE_TO_LABEL`."""
    from datasets import load_from_disk

    file = Path(path)
    if not file.exists():
        raise DataError(Errors.E058, path=file)
    try:
        if file.is_dir():
            frame = load_from_disk(str(file)).to_pandas()
        elif file.suffix in {".jsonl", ".json"}:
            frame = pd.read_json(file, lines=file.suffix == ".jsonl", dtype=False)
        elif file.suffix == ".csv":
            from ..labels import unneutralise_formula  # the export's CSV guards formula-like cells

            frame = pd.read_csv(file, dtype=str, keep_default_na=False).map(unneutralise_formula)
        elif file.suffix in {".parquet", ".pq"}:
            frame = pd.read_parquet(file)
        else:
            raise DataError(Errors.E052, path=file, detail=f"unsupported extension {file.suffix!r} (use .jsonl, .csv, .parquet or a datasets folder)")
    except DataError:
        raise
    except Exception as err:  # pandas/pyarrow raise many types for a corrupt file
        raise DataError(Errors.E052, path=file, detail=f"{type(err).__name__}: {err}") from err
    missing = {"premise", "hypothesis", "type"} - set(frame.columns)
    if missing:
        raise DataError(Errors.E052, path=file, detail=f"missing columns {sorted(missing)}")
    # the review export keeps rows a pair classifier cannot learn from: bare rejections
    # (no type) and omissions (one claim, empty hypothesis); skip them, refuse anything else
    frame = frame[frame["type"].notna() & frame["hypothesis"].notna()]
    frame = frame[(frame["type"].astype(str).str.strip() != "") & (frame["hypothesis"].astype(str).str.strip() != "")]
    frame = frame[frame["type"].astype(str).str.strip().str.lower() != "omission"]
    types = frame["type"].astype(str).str.strip().str.lower()
    bad = sorted(set(types) - set(TYPE_TO_LABEL))
    if bad:
        raise DataError(
            Errors.E052, path=file, detail=f"unknown type(s) {bad}; expected one of {sorted(TYPE_TO_LABEL)}"
        )
    out = pd.DataFrame(
        {
            "premise": frame["premise"].astype(str).str.strip(),
            "hypothesis": frame["hypothesis"].astype(str).str.strip(),
            "label": [LABEL2ID[TYPE_TO_LABEL[t]] for t in types],
            "type": types,
        }
    )
    out = out[(out["premise"] != "") & (out["hypothesis"] != "")]
    if out.empty:
        raise DataError(Errors.E052, path=file, detail="no labelled pairs")
    return _frame_to_dataset(out, "labels")


def label_counts(ds: Dataset) -> dict[str, int]:
    counts = np.bincount(np.asarray(ds["label"], dtype="int64"), minlength=len(LABELS))
    return {LABELS[i]: int(c) for i, c in enumerate(counts)}


def reverse_pairs(ds: Dataset) -> Dataset:
    """Swapped (hypothesis, premise) pairs whose label is still known: a contradiction stays
    one (it is symmetric), an entailment becomes neutral (SNLI hypotheses are more general
    than their premise, so the premise rarely follows from them). Neutral pairs are dropped.

    Teaches the cross-encoder that entailment has a direction. Measured on SNLI held-out
    data: +1.2 points for a full fine-tune on SNLI alone (0.783 -> 0.795), but not for the
    LoRA recipe on all sources (see the README), so it is opt-in (``--reversed snli``)."""
    neutral, contra = LABEL2ID["neutral"], LABEL2ID["contradiction"]
    kept = ds.filter(lambda r: r["label"] != neutral)
    source = (kept["source"][0] if len(kept) and "source" in kept.column_names else "pairs") + "_reversed"
    return Dataset.from_dict({
        "premise": kept["hypothesis"],
        "hypothesis": kept["premise"],
        "label": [contra if lab == contra else neutral for lab in kept["label"]],
        "source": [source] * len(kept),
    })


def concat(parts: Iterable[Dataset], columns: Sequence[str] = ("premise", "hypothesis", "label", "source")) -> Dataset:
    """Concatenate datasets on the shared columns only (they carry different extras)."""
    from datasets import Features, Value, concatenate_datasets

    keep = list(columns)
    # pandas-built and dict-built datasets differ in string width (string vs large_string)
    types = {"label": Value("int64")}
    features = Features({c: types.get(c, Value("string")) for c in keep})
    return concatenate_datasets([p.select_columns(keep).cast(features) for p in parts if len(p)])
