"""divergence: find where two sides' accounts of the same event part."""

__version__ = "0.1.0"
