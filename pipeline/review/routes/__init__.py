"""The review app's routes, by what they do: ``pages`` (GET: the pages and the queue as
JSON) and ``labels`` (POST: labels, their undo, missed divergences, the reviewer's name)."""

from . import labels, pages

__all__ = ["labels", "pages"]
