"""Batch processing: many cases in, one report per case plus a summary table.

One module per job: ``inputs`` and ``table`` (what a batch reads: case folders or a
manifest table), ``fingerprints`` (what a case's report depends on, and the stamp that
vouches for a finished case), ``worker`` (the one-case step), ``local`` and ``ray_engine``
(the two engines), ``outputs`` (lock, run log, summary table), ``progress`` (the
terminal), ``driver`` (``run_batch``, tying them together).
"""

from .config import BatchConfig, BatchResult, CaseOutcome, Job
from .driver import Engine, run_batch
from .fingerprints import FINGERPRINT_NAME, case_fingerprint, case_inputs, environment_fingerprint
from .inputs import find_cases, find_input
from .outputs import summary_frame, write_summary
from .progress import ProgressReporter
from .table import read_manifest_table, write_case_folders
from .worker import CaseAnalyser

__all__ = [
    "FINGERPRINT_NAME", "BatchConfig", "BatchResult", "CaseAnalyser", "CaseOutcome", "Engine", "Job",
    "ProgressReporter", "case_fingerprint", "case_inputs", "environment_fingerprint", "find_cases", "find_input",
    "read_manifest_table", "run_batch", "summary_frame", "write_case_folders", "write_summary",
]
