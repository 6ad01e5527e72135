"""The actions (POST, each behind the same-origin and CSRF checks of ``deps.get_form``):
label a flag, undo it, record a divergence the pipeline missed or withdraw it, and
remember the reviewer's name. A bad value is a 4xx with a one-line reason and changes nothing.

Each answers JSON to ``Accept: application/json`` (``static/review.js`` updates the page in
place) and otherwise redirects back, so the pages work without JavaScript.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from ...errors import LabelError
from ...labels import FLAG_DECISIONS, Label, LabelStore, flag_key, missed_key, reviewer_problem
from ..deps import Case, CheckedForm, Flag, Reviewer, Settings, Store
from ..security import Refused, remember_reviewer, wants_json
from ..view import case_url, review_text

router = APIRouter()


@router.post("/cases/{case_id}/divergences/{divergence_id}", name="label")
async def label_flag(request: Request, form: CheckedForm, case: Case, divergence: Flag, store: Store,
                     reviewer: Reviewer) -> Response:
    """Accept, reject, correct (with ``type``) or mark "not about the same thing" (``unrelated``)."""
    decision = str(form.get("decision") or "")
    if decision not in FLAG_DECISIONS:
        raise Refused(422, f"unknown decision {decision!r} (use one of: {', '.join(FLAG_DECISIONS)})")
    stored = await _record(store, Label.for_flag(
        case_id=case.id, divergence_id=divergence.id, decision=decision, reviewer=reviewer,
        claims=case.claim_refs(divergence), predicted_type=divergence.type, type=str(form.get("type") or "") or None,
        topic=divergence.topic, score=divergence.score))
    if wants_json(request):
        reviews = await run_in_threadpool(store.reviews_for, case.id)
        summary = stored.summary()
        return JSONResponse({"review": summary, "text": review_text(summary), "progress": case.progress(reviews)})
    return _back(form, case_url(case, f"d-{divergence.id}"))


@router.post("/cases/{case_id}/divergences/{divergence_id}/clear", name="clear")
async def clear_flag(request: Request, form: CheckedForm, case: Case, divergence: Flag, store: Store,
                     reviewer: Reviewer) -> Response:
    """Undo: withdraw the flag's current label (the history keeps it)."""
    await _clear(store, case.id, flag_key(divergence.id), reviewer)
    if wants_json(request):
        reviews = await run_in_threadpool(store.reviews_for, case.id)
        return JSONResponse({"review": None, "text": review_text(None), "progress": case.progress(reviews)})
    return _back(form, case_url(case, f"d-{divergence.id}"))


@router.post("/cases/{case_id}/missed", name="missed")
async def add_missed(request: Request, form: CheckedForm, case: Case, store: Store, reviewer: Reviewer) -> Response:
    """A divergence the pipeline missed: link ``claim_a`` and ``claim_b``, or ``claim_a`` alone as an omission."""
    ids = _claim_ids(form)
    if not ids:
        raise Refused(422, "choose the claim(s) the pipeline missed")
    unknown = [i for i in ids if i not in case.claims]
    if unknown:
        raise Refused(422, f"unknown claim {unknown[0]!r} in case {case.id!r}")
    kind = str(form.get("type") or ("omission" if len(ids) == 1 else ""))
    existing = case.flag_on(ids)
    if existing is not None:
        raise Refused(409, f"the pipeline already flagged these claims as {existing.id!r} ({existing.type}); "
                           "review that flag")
    await _record(store, Label.missed(case_id=case.id, reviewer=reviewer, claims=[case.claims[i].ref() for i in ids],
                                      type=kind))
    if wants_json(request):
        missed = await run_in_threadpool(store.labels, case_id=case.id, decision="missed")
        return JSONResponse({"missed": len(missed)})
    return _back(form, case_url(case, "missed"))


@router.post("/cases/{case_id}/missed/clear", name="clear_missed")
async def clear_missed(request: Request, form: CheckedForm, case: Case, store: Store, reviewer: Reviewer) -> Response:
    cleared = await _clear(store, case.id, missed_key(_claim_ids(form)), reviewer)
    if cleared is None:
        raise Refused(404, "no such missed-divergence label")
    if wants_json(request):
        return JSONResponse({"cleared": True})
    return _back(form, case_url(case, "missed"))


@router.post("/reviewer", name="set_reviewer")
async def set_reviewer(request: Request, form: CheckedForm, settings: Settings) -> Response:
    """Remember the reviewer's name (a signed cookie) so each label carries it."""
    name = str(form.get("reviewer") or "").strip()
    problem = reviewer_problem(name)
    if problem:
        raise Refused(422, problem)
    response = JSONResponse({"reviewer": name}) if wants_json(request) else _back(form, "/")
    remember_reviewer(response, name, settings.signer)
    return response


async def _record(store: LabelStore, label: Label) -> Label:
    try:
        return await run_in_threadpool(store.record, label)
    except LabelError as err:
        raise Refused(422, err.problem) from err


async def _clear(store: LabelStore, case_id: str, key: str, reviewer: str) -> Label | None:
    try:
        return await run_in_threadpool(store.clear, case_id, key, reviewer=reviewer)
    except LabelError as err:
        raise Refused(422, err.problem) from err


def _claim_ids(form: FormData) -> list[str]:
    ids = [str(form.get(k) or "").strip() for k in ("claim_a", "claim_b")]
    return [i for i in ids if i]


def _back(form: FormData, default: str) -> Response:
    target = str(form.get("next") or default)
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = default  # never redirect off-site
    return RedirectResponse(target, status_code=303)
