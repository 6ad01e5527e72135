"""Every user-facing error of the project, gathered in one place with a code.

Like spaCy's ``Errors`` table: messages live here, call sites raise
``CaseError(Errors.E002, path=..., detail=...)``, so wording stays consistent and
users can search for a code. The CLI prints ``str(err)``: one line that names the
file and the problem, and exits with ``ExitStatus.ERROR``.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class Errors:
    E001 = "case manifest not found (expected case.toml in the case folder)"
    E002 = "malformed case.toml: {detail}"
    E003 = "invalid case manifest: {detail}"
    E004 = "document listed in case.toml does not exist"
    E005 = "duplicate document id {doc_id!r} in case.toml"
    E006 = "a case needs documents from at least two sides; found {sides}"
    E007 = "document is empty"
    E008 = "document looks binary, not text"
    E009 = "document is {size_mb:.0f} MB, over the {limit_mb:.0f} MB limit (raise --max-doc-mb to allow it)"
    E010 = "malformed JSON transcript: {detail}"
    E011 = "unsupported document format {fmt!r} (use transcript, article, txt, md, html or json)"
    E012 = "cannot read document: {detail}"
    E013 = "case folder not found"
    E014 = "model not found: {detail}"
    E015 = "not a report folder (no report.json): {detail}"
    E016 = "malformed batch manifest: {detail}"
    E017 = "invalid label: {detail}"
    # E018-E029: hostile or runaway input (see README "Security")
    E018 = "document is outside the case folder{via}; keep documents inside it or name their folder with --allow-root"
    E019 = "document is not a regular file ({kind})"
    E020 = "line {line} is {length:,} characters long, over the {limit:,}-character limit (split it into paragraphs)"
    E021 = "{what} is nested more than {limit} levels deep"
    E022 = "{count} documents, over the limit of {limit} per case"
    E023 = "documents {first!r} and {second!r} are the same file; list each document once"
    E024 = "case manifest is not a regular file or is over {limit_kb} KB"
    # E050-E069: training data, the pair classifier and its registry
    E050 = "{name} data not found (set DIVERGENCE_DATA or pass the path)"
    E051 = "malformed dataset file: {detail}"
    E052 = "cannot read labelled pairs: {detail}"
    E053 = "pair classifier not available: {detail}"
    E054 = "malformed model registry: {detail}"
    E055 = "unknown model version {name!r} (known: {known})"
    E056 = "nothing to roll back to: {detail}"
    E057 = "invalid training configuration: {detail}"
    E058 = "labelled pairs file not found"
    E059 = "cannot run the pair classifier with precision {precision!r}: {detail}"
    # E070-E079: the evaluation harness (divergence evaluate)
    E070 = "unknown evaluation task {task!r} (choose from {known})"
    E071 = "invalid evaluation configuration: {detail}"
    E072 = "cannot write evaluation results: {detail}"
    # E080-E089: the spaCy components (pipeline.stages.attribution, claim_detector) and the cue lexicon
    E080 = "malformed cue lexicon: {detail}"
    E081 = "attribution needs a dependency parse: add 'divergence_attribution' after the parser"
    E082 = "malformed brat annotation at line {line}: {detail}"
    E083 = "the claims stage needs the 'divergence_claims' component in the spaCy pipeline (pipeline.models.build_nlp adds it)"
    # E090-E099: review app and label store (pipeline.review, pipeline.labels)
    E090 = "malformed report.json: {detail}"
    E091 = "labels database was written by a newer divergence (schema version {found}, this version knows {known}); upgrade divergence to open it"
    E092 = "cannot open labels database: {detail}"
    E093 = "labels database not found (review some flags with `divergence review` first, or pass --db)"
    E094 = "no report folders given and none found under {where}"
    E095 = "cannot export labels: {detail}"
    E096 = "the access token is empty: pass a non-empty --token (or unset DIVERGENCE_REVIEW_TOKEN to have one generated)"
    # E100-E109: event gold files and the event scorer (pipeline.scoring.gold, evaluation/event_scorer.py)
    E100 = "event gold file not found"
    E101 = "malformed event gold file: {detail}"
    E102 = "report does not belong to this gold case: {detail}"
    E103 = "gold quote not found in document {doc!r}: {quote!r}"
    E104 = "no event found: expected gold files (*.json) or real-event folders (case.toml + gold.json)"
    # E110-E119: batch processing (pipeline.batch, divergence batch)
    E110 = "no cases found: expected case folders (each with case.toml) or a manifest table (manifest.csv or manifest.jsonl)"
    E111 = "case id {case_id!r} is also used by {other}; each case in a batch needs its own id"
    E112 = "analysis failed unexpectedly: {detail}"
    E113 = "batch input not found"
    E114 = "invalid batch option: {detail}"
    E115 = "another batch is writing to this output folder (lock held on {lock})"
    E116 = "Ray engine unavailable: {detail}"
    E117 = "batch workers cannot start: {detail}"
    E118 = "cannot write to the output folder: {detail}"


class Warnings:
    W001 = "not valid UTF-8; decoded as {encoding} (confidence {confidence:.0%})"
    W002 = "no speaker labels found; the whole text is attributed to the manifest speaker {speaker!r}"
    W003 = "no trained pair classifier found ({detail}); divergence types come from frame comparison and embedding similarity only"
    W004 = "removed {what} from the text"
    W005 = "the divergence judge {judge!r} reads the pair classifier's probabilities and no classifier is loaded; the hand rules decide instead"
    W006 = "the divergence judge {judge!r} was trained on the probabilities of classifier {trained!r}, not {loaded!r}; its thresholds may not fit (retrain it: divergence train-judge)"


class ExitStatus(IntEnum):
    """What the exit status of every ``divergence`` command means: the one table the commands
    follow (``pipeline.commands.common``), so a script can tell the outcomes apart."""

    OK = 0  # done
    FAILED = 1  # done, but some of the items failed, each listed with its error (batch: a case; --fail-fast)
    ERROR = 2  # nothing done: bad input or option, a model, data or output that cannot be used (one `error:` line)
    PARTIAL = 3  # done, but part of the input was left out and listed (run: documents skipped, in the report)


class DivergenceError(Exception):
    """Base error: carries the file it is about so the message names it."""

    def __init__(self, template: str, *, path: str | Path | None = None, **fmt: object) -> None:
        self.path = str(path) if path is not None else None
        self.code = _code_of(template)
        self.problem = template.format(**fmt) if fmt else template
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}{self.problem} [{self.code}]"


class CaseError(DivergenceError):
    """Bad case input: manifest or documents."""


class ModelError(DivergenceError):
    """A configured model cannot be loaded."""


class DataError(DivergenceError):
    """Training or evaluation data is missing or malformed."""


class ReportError(DivergenceError):
    """A report folder that cannot be read back (review, labels)."""


class LabelError(DivergenceError):
    """A label that is refused, or a labels database that cannot be used."""


class EvaluationError(DivergenceError):
    """An evaluation run that cannot be carried out as configured."""


class BatchError(DivergenceError):
    """A batch that cannot start or go on (input, output folder, engine); one bad case is not one."""


def _code_of(template: str) -> str:
    for table in (Errors, Warnings):
        for name, value in vars(table).items():
            if value == template:
                return name
    return "E000"


def warning_text(template: str, *, path: str | Path | None = None, **fmt: object) -> str:
    where = f"{path}: " if path else ""
    return f"{where}{template.format(**fmt)} [{_code_of(template)}]"
