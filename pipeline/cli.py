"""The ``divergence`` command line (typer)."""

from __future__ import annotations

import importlib
import os
import warnings
from pathlib import Path

import typer

from .commands import COMMAND_MODULES
from .config import RunConfig

# Hub look-ups hang ~20 s each without network; the project's models are all local
# unless the user names a hub id and opts in with DIVERGENCE_ONLINE=1.
if os.environ.get("DIVERGENCE_ONLINE") != "1":
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(var, "1")

# a deprecation inside transformers/peft that users cannot act on
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

app = typer.Typer(
    name="divergence",
    help="Find where two sides' accounts of the same event part.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

@app.callback()
def main(
    ctx: typer.Context,
    spacy_model: str = typer.Option(RunConfig.spacy_model, "--spacy-model", help="spaCy pipeline: package name or path."),
    encoder: str = typer.Option(RunConfig.encoder, "--encoder", help="Sentence encoder: installed package, HF id or local path."),
    classifier: str = typer.Option(RunConfig.classifier, "--classifier", help="Pair classifier: 'default' (the promoted model), a version in --models-dir, a path, an HF id, or 'none'."),
    classifier_precision: str = typer.Option(RunConfig.classifier_precision, "--classifier-precision", help="How the pair classifier runs: auto, fp32, bf16, int8, onnx or onnx-int8 (ONNX Runtime, needs the onnx extra)."),
    judge: str = typer.Option(RunConfig.judge, "--judge", help="Divergence judge: 'default' (the promoted judge), a judge version in --models-dir, a folder holding judge.json, or 'none' (hand rules)."),
    models_dir: Path = typer.Option(Path(RunConfig.models_dir), "--models-dir", help="Folder of trained model versions and registry.json."),
    gazetteer: list[Path] = typer.Option([], "--gazetteer", help="Extra gazetteer .jsonl file or folder (repeatable)."),
) -> None:
    """Global model choices, shared by every command."""
    ctx.obj = RunConfig(spacy_model=spacy_model, encoder=encoder, classifier=classifier,
                        classifier_precision=classifier_precision, judge=judge, models_dir=str(models_dir), gazetteers=tuple(str(g) for g in gazetteer))


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as err:  # a command group still being written
        if err.name != _name:
            raise
        continue
    _module.register(app)


if __name__ == "__main__":
    app()
