"""REST for knowledge bases, their documents and ingest jobs (JSON in and out, see /docs).

Readers list and inspect; editors create KBs and upload, delete or re-ingest documents; only
admins delete a whole KB. Every route checks the key's KB list before the KB's existence.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from ingest.kb import KnowledgeBase
from ingest.uploads import UploadRejected, check_size
from rag_app.api.auth import admin, api_state, check_kb, editor, reader, visible_kbs
from rag_app.api.errors import ApiError, require_json
from rag_app.api.jobs import Job
from rag_app.api.keys import ApiKey

router = APIRouter(tags=["Knowledge bases"])
MAX_FILES = 20
# A name with a path in it is refused, not silently cut down: the client should know.
PATHLIKE = re.compile(r"[\\/\x00]|^\.\.?$")


class NewKb(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, description="Letters, digits, '.', '_', '-'.")


def doc_id(source: str) -> str:
    """A stable, URL-safe id for a document (its source path may hold any character)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def _documents(kb: KnowledgeBase) -> list[dict[str, Any]]:
    return [
        {
            "id": doc_id(s.source),
            "name": Path(s.source).name,
            "source": s.source,
            "chunks": s.chunks,
            "ingested_at": s.ingested_at,
        }
        for s in kb.sources()
    ]


def _open(request: Request, key: ApiKey, kb: str) -> KnowledgeBase:
    check_kb(key, kb)
    return api_state(request).kb(kb)


@router.get("/v1/kbs")
def list_kbs(request: Request, key: ApiKey = Depends(reader)) -> dict[str, Any]:  # noqa: B008
    """The knowledge bases this key may use (never the others)."""
    names = visible_kbs(key, api_state(request).kb_names())
    return {"object": "list", "data": [{"name": n} for n in names]}


@router.post("/v1/kbs", status_code=201, dependencies=[Depends(require_json)])
def create_kb(body: NewKb, request: Request, key: ApiKey = Depends(editor)) -> dict[str, Any]:  # noqa: B008
    check_kb(key, body.name)
    state = api_state(request)
    if body.name in state.kb_names():
        raise ApiError(409, f"knowledge base {body.name!r} already exists", "kb_exists", "name")
    return state.kb(body.name, create=True).stats()


@router.get("/v1/kbs/{kb}")
def get_kb(kb: str, request: Request, key: ApiKey = Depends(reader)) -> dict[str, Any]:  # noqa: B008
    """Model, store, document and chunk counts (as `rag kb stats`)."""
    return _open(request, key, kb).stats()


@router.delete("/v1/kbs/{kb}")
def delete_kb(kb: str, request: Request, key: ApiKey = Depends(admin)) -> dict[str, Any]:  # noqa: B008
    from ingest.kb import remove_kb

    base = _open(request, key, kb)
    state = api_state(request)
    with base.writer_lock():  # not while an ingest job writes to it
        state.forget_kb(kb)
        remove_kb(kb, state.settings)
    return {"deleted": True, "name": kb}


@router.get("/v1/kbs/{kb}/documents")
def list_documents(kb: str, request: Request, key: ApiKey = Depends(reader)) -> dict[str, Any]:  # noqa: B008
    return {"object": "list", "data": _documents(_open(request, key, kb))}


@router.post("/v1/kbs/{kb}/documents", status_code=202)
async def upload_documents(
    kb: str,
    request: Request,
    key: ApiKey = Depends(editor),  # noqa: B008
) -> dict[str, Any]:
    """Upload files (multipart field `files`, repeatable) and start an ingest job.

    The job reports each file; one whose bytes the KB already holds under another name is
    `duplicate` (its reason names that document) and its upload is not kept.
    """
    from starlette.concurrency import run_in_threadpool

    base = await run_in_threadpool(_open, request, key, kb)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(
            415,
            "send the files as multipart/form-data in the field 'files'",
            "unsupported_media_type",
        )
    state = api_state(request)
    max_mb = state.settings.max_upload_mb
    async with request.form(max_files=MAX_FILES) as form:
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        if not files:
            raise ApiError(400, "no files: send them in the multipart field 'files'", "no_files")
        for upload in files:  # check every file before saving any
            name = upload.filename or ""
            if not name or PATHLIKE.search(name):
                raise ApiError(
                    400,
                    f"file name {name!r} is not a plain file name: send the name without folders",
                    "invalid_filename",
                    "files",
                )
            try:
                check_size(name, upload.size or 0, max_mb)
            except UploadRejected as exc:
                raise ApiError(413, str(exc), "file_too_large", "files") from exc
        blobs = [(f.filename or "", await f.read()) for f in files]
    job = await run_in_threadpool(state.jobs.submit_files, base, blobs, key.id)
    return {"job": job.model_dump(mode="json"), "files": [f.name for f in job.files]}


def _find(kb: KnowledgeBase, document: str) -> str:
    for info in kb.sources():
        if doc_id(info.source) == document:
            return info.source
    raise ApiError(
        404,
        f"no document {document!r} in knowledge base {kb.name!r} (GET "
        f"/v1/kbs/{kb.name}/documents lists them)",
        "document_not_found",
    )


@router.delete("/v1/kbs/{kb}/documents/{document}")
def delete_document(
    kb: str,
    document: str,
    request: Request,
    key: ApiKey = Depends(editor),  # noqa: B008
) -> dict[str, Any]:
    base = _open(request, key, kb)
    source = _find(base, document)
    with base.writer_lock():
        chunks = base.remove_source(source)
    api_state(request).jobs.forget_upload(base, source)  # our copy of an upload goes too
    return {"deleted": True, "id": document, "source": source, "chunks": chunks}


@router.post("/v1/kbs/{kb}/documents/{document}/reingest", status_code=202)
def reingest_document(
    kb: str,
    document: str,
    request: Request,
    key: ApiKey = Depends(editor),  # noqa: B008
) -> dict[str, Any]:
    """Read the document's file again (changed content replaces the old chunks)."""
    base = _open(request, key, kb)
    job = api_state(request).jobs.submit_reingest(base, _find(base, document), key.id)
    return {"job": job.model_dump(mode="json")}


def _job_for(request: Request, key: ApiKey, job_id: str) -> Job:
    job = api_state(request).jobs.get(job_id)
    if job is None or not key.may_use(job.kb) or (job.owner != key.id and key.role != "admin"):
        raise ApiError(404, f"no job {job_id!r} for this key", "job_not_found")
    return job


@router.get("/v1/jobs")
def list_jobs(request: Request, key: ApiKey = Depends(reader)) -> dict[str, Any]:  # noqa: B008
    jobs = [
        j
        for j in api_state(request).jobs.all_jobs()
        if key.may_use(j.kb) and (j.owner == key.id or key.role == "admin")
    ]
    return {"object": "list", "data": [j.model_dump(mode="json") for j in jobs]}


@router.get("/v1/jobs/{job_id}")
def get_job(job_id: str, request: Request, key: ApiKey = Depends(reader)) -> dict[str, Any]:  # noqa: B008
    """Progress (files_done of files_total), per-file results and the `rag ingest --json` report."""
    return _job_for(request, key, job_id).model_dump(mode="json")
