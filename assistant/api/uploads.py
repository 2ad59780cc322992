"""Documents without a shell: upload and delete documents, re-index in the background.

- ``POST /v1/documents`` (admin key, multipart): the file plus optional catalog fields. The file is
  size-capped (``ASSISTANT_MAX_UPLOAD_BYTES``), its type is checked by content (a ``.pdf`` must be a
  PDF, a ``.docx`` a Word package, text must be UTF-8), and it is written only under ``corpus/``, as
  ``<document id><suffix>``: the client's file name never becomes a path.
- ``DELETE /v1/documents/{id}`` (admin key): the file goes to ``corpus/.trash/`` and its catalog entry
  is removed.
- ``GET /v1/index/status`` (API key): the jobs, newest first, with their phase, documents and
  passages done, and one-line errors per file.

One worker thread runs the jobs in order. A job checks the new file with the loaders and the
chunker first; a file that fails never reaches the catalog, so the serving index is untouched.
Then it commits the corpus change, builds a new index (published by swapping the ``current`` link,
see ``assistant.indexing``) and reloads the service. A failed build rolls the corpus change back;
the previous build keeps serving throughout.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
import time
import uuid
import zipfile
from dataclasses import asdict, dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path as PathParam, Request, UploadFile
from pydantic import BaseModel, Field, ValidationError

from assistant.api.errors import ApiError
from assistant.api.models import DocumentRecord, error_responses
from assistant.api.security import require_admin_key, require_api_key
from assistant.catalog import CATALOG_FILE, CatalogError, load_catalog
from assistant.records import DocumentInfo
from assistant.text import YEAR_IN_NAME
from assistant.service import AssistantService
from assistant.settings import Settings

log = logging.getLogger("assistant.api")

STAGING_DIR = ".uploads"
TRASH_DIR = ".trash"
KEEP_JOBS = 50
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")


# --- content checks ------------------------------------------------------------------------


def sniff(data: bytes) -> str | None:
    """The document kind the bytes are, by content: pdf, docx, html, text; None for anything else."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(BytesIO(data)) as z:
                names = set(z.namelist())
        except zipfile.BadZipFile:
            return None
        return "docx" if "word/document.xml" in names and "[Content_Types].xml" in names else None
    if b"\x00" in data[:65536]:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    head = text[:2048].lstrip().lower()
    if head.startswith(("<!doctype html", "<html")) or ("<html" in head and "<body" in text[:65536].lower()):
        return "html"
    return "text"


KIND_OF_SUFFIX = {".pdf": "pdf", ".docx": "docx", ".html": "html", ".htm": "html", ".txt": "text", ".md": "text"}


def check_content(filename: str, data: bytes, max_bytes: int) -> str:
    """The file's suffix after checking size and that the content is what the suffix says; else an ApiError."""
    suffix = Path(filename or "").suffix.lower()
    if suffix not in KIND_OF_SUFFIX:
        raise ApiError(415, "unsupported_media_type",
                       f"Unsupported file type {suffix or '(none)'}: send .pdf, .docx, .html, .htm, .txt or .md.")
    if len(data) > max_bytes:
        raise ApiError(413, "payload_too_large", f"The file has {len(data)} bytes; the limit is {max_bytes}.")
    if not data:
        raise ApiError(422, "validation_error", "Invalid request: file: the file is empty")
    kind = sniff(data)
    if kind != KIND_OF_SUFFIX[suffix] and not (kind == "html" and suffix in (".txt", ".md")):
        found = kind or "binary data"
        raise ApiError(415, "unsupported_media_type",
                       f"The content of {Path(filename).name!r} is {found}, not what its suffix {suffix} says.")
    return suffix


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80].strip("-")


def inside(base: Path, path: Path) -> Path:
    """``path`` resolved, if it lies under ``base``; else ValueError (never write outside the corpus)."""
    base, resolved = base.resolve(), path.resolve()
    if resolved.parent != base and base not in resolved.parents:
        raise ValueError(f"{path} is outside {base}")
    return resolved


# --- the catalog file ----------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON strings, ints and string lists are valid TOML


def catalog_block(doc: DocumentInfo) -> str:
    lines = ["[[documents]]"]
    for key, value in doc.model_dump().items():
        if value is None or value == []:
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def remove_block(catalog_text: str, document_id: str) -> str | None:
    """The catalog text without the ``[[documents]]`` table of ``document_id`` (comments elsewhere kept)."""
    import tomllib

    parts = re.split(r"(?m)^(?=\[\[documents\]\]\s*$)", catalog_text)
    kept, found = [], False
    for part in parts:
        if part.startswith("[[documents]]"):
            try:
                entry = tomllib.loads(part).get("documents", [{}])[0]
            except tomllib.TOMLDecodeError:
                entry = {}
            if entry.get("id") == document_id:
                found = True
                continue
        kept.append(part)
    return "".join(kept) if found else None


# --- jobs ----------------------------------------------------------------------------------


@dataclass
class FileError:
    file: str
    error: str


@dataclass
class Job:
    id: str
    action: Literal["add", "delete"]
    document_id: str
    file: str
    state: str = "queued"  # queued | running | succeeded | failed
    phase: str = "queued"  # queued | checking | indexing | embedding | reloading | done
    documents_total: int = 0
    documents_done: int = 0
    passages_done: int = 0
    """Passages chunked so far in this build."""
    passages_embedded: int = 0
    passages_total: int = 0
    document_passages: int | None = None
    """Passages of the uploaded document in the new build."""
    errors: list[FileError] = field(default_factory=list)
    message: str = ""
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    build: str | None = None
    _doc: DocumentInfo | None = None
    _staged: Path | None = None

    def public(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        out["seconds"] = round((self.finished_at or time.time()) - self.started_at, 2) if self.started_at else None
        return out


class IndexJobs:
    """Upload/delete jobs run one at a time by a worker thread; the status keeps the last ``KEEP_JOBS``."""

    def __init__(self, state: Any):
        self._state = state  # the app's state: its service and settings may be swapped (tests do)
        self._queue: queue.Queue[Job] = queue.Queue()
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()  # jobs dict and the corpus/catalog check-and-reserve
        self._worker: threading.Thread | None = None

    @property
    def service(self) -> AssistantService:
        return self._state.service

    @property
    def settings(self) -> Settings:
        return self._state.settings

    # -- submission ---------------------------------------------------------------------------
    @property
    def corpus(self) -> Path:
        return Path(self.settings.corpus_dir)

    def _pending(self) -> list[Job]:
        return [j for j in self._jobs.values() if j.state in ("queued", "running")]

    def submit_add(self, doc: DocumentInfo, data: bytes) -> Job:
        with self._lock:
            existing = {d.id for d in load_catalog(self.corpus, set(KIND_OF_SUFFIX))}
            pending = {j.document_id for j in self._pending()}
            if doc.id in existing or doc.id in pending:
                raise ApiError(409, "conflict", f"A document with id {doc.id!r} already exists; delete it first or choose another id.")
            if (self.corpus / doc.file).exists():
                raise ApiError(409, "conflict", f"corpus/{doc.file} already exists; choose another id.")
            job = Job(id=uuid.uuid4().hex[:12], action="add", document_id=doc.id, file=doc.file, _doc=doc)
            staging = self.corpus / STAGING_DIR
            staging.mkdir(exist_ok=True)
            staged = inside(self.corpus, staging / f"{job.id}{Path(doc.file).suffix}")
            staged.write_bytes(data)
            job._staged = staged
            self._add(job)
        return job

    def submit_delete(self, document_id: str) -> Job:
        with self._lock:
            docs = {d.id: d for d in load_catalog(self.corpus, set(KIND_OF_SUFFIX))}
            if document_id not in docs or document_id in {j.document_id for j in self._pending() if j.action == "delete"}:
                raise ApiError(404, "not_found", f"No such document: {document_id}")
            job = Job(id=uuid.uuid4().hex[:12], action="delete", document_id=document_id, file=docs[document_id].file)
            self._add(job)
        return job

    def _add(self, job: Job) -> None:
        self._jobs[job.id] = job
        done = [j for j in self._jobs.values() if j.state in ("succeeded", "failed")]
        for old in sorted(done, key=lambda j: j.created_at)[: max(0, len(self._jobs) - KEEP_JOBS)]:
            self._jobs.pop(old.id, None)
        self._queue.put(job)
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._run, name="index-jobs", daemon=True)
            self._worker.start()

    # -- status -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)
            running = any(j.state == "running" for j in jobs)
            queued = sum(j.state == "queued" for j in jobs)
            listed = [j.public() for j in jobs]
        service = self.service
        manifest = service.parts().store.manifest() if service.ready else {}
        index = {
            "build": service.build_id,
            "passages": manifest.get("passage_count"),
            "documents": len(manifest.get("indexed_documents", [])),
            "created_at": manifest.get("created_at"),
        }
        return {"state": "running" if running else "queued" if queued else "idle", "queued": queued,
                "index": index, "jobs": listed}

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def wait_idle(self, timeout: float = 300) -> None:
        """For tests and scripts: block until no job is queued or running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending():
                    return
            time.sleep(0.05)
        raise TimeoutError("index jobs still running")

    # -- the worker ---------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=5)
            except queue.Empty:
                return
            job.state, job.started_at = "running", time.time()
            try:
                self._do(job)
                job.state = "succeeded"
            except Exception as exc:  # the job fails; the serving index stays as it was
                job.state = "failed"
                job.message = job.message or str(exc) or type(exc).__name__
                log.warning("index job %s (%s %s) failed: %s", job.id, job.action, job.document_id, job.message)
            finally:
                job.phase, job.finished_at = "done", time.time()
                if job._staged is not None and job._staged.exists():
                    job._staged.unlink()

    def _do(self, job: Job) -> None:
        from assistant.chunking import chunk_document
        from assistant.loaders import LoadError, load_text

        catalog_path = self.corpus / CATALOG_FILE
        before = catalog_path.read_text(encoding="utf-8") if catalog_path.exists() else ""
        undo: list[Any] = []
        if job.action == "add":
            assert job._doc is not None and job._staged is not None
            job.phase = "checking"
            try:
                text = load_text(job._staged)
            except LoadError as exc:
                job.errors.append(FileError(job.file, exc.reason))
                job.message = f"{job.file}: {exc.reason}"
                raise
            if not chunk_document(job._doc, text, self.settings.chunk_tokens):
                job.errors.append(FileError(job.file, "no text to index"))
                job.message = f"{job.file}: no text to index"
                raise ValueError(job.message)
            target = inside(self.corpus, self.corpus / job.file)
            os.replace(job._staged, target)
            undo.append(lambda: target.unlink(missing_ok=True))
            sep = "" if not before or before.endswith("\n\n") else ("\n" if before.endswith("\n") else "\n\n")
            _write_atomic(catalog_path, before + sep + catalog_block(job._doc))
        else:
            job.phase = "checking"
            source = inside(self.corpus, self.corpus / job.file)
            after = remove_block(before, job.document_id)
            if after is not None:
                _write_atomic(catalog_path, after)
            if source.exists():
                trash = self.corpus / TRASH_DIR
                trash.mkdir(exist_ok=True)
                dest = inside(self.corpus, trash / f"{time.strftime('%Y%m%dT%H%M%S')}-{job.file}")
                os.replace(source, dest)
                undo.append(lambda: os.replace(dest, source))
        undo.append(lambda: _write_atomic(catalog_path, before))
        try:
            self._build(job)
        except BaseException:
            for step in reversed(undo):
                try:
                    step()
                except OSError as exc:
                    log.error("could not roll back after a failed index job: %s", exc)
            raise

    def _build(self, job: Job) -> None:
        from assistant.indexing import build_index

        try:
            docs = load_catalog(self.corpus, set(KIND_OF_SUFFIX))
        except CatalogError as exc:
            job.message = str(exc)
            raise
        job.documents_total, job.phase = len(docs), "indexing"

        def on_document(doc: DocumentInfo, passages: int | None, error: str | None) -> None:
            job.documents_done += 1
            if error:
                job.errors.append(FileError(doc.file, error.split(": ", 1)[-1] if error.startswith(doc.file) else error))
            else:
                job.passages_done += passages or 0
                if doc.id == job.document_id:
                    job.document_passages = passages

        def progress(advance: int, total: int) -> None:
            job.phase = "embedding"
            job.passages_total = total
            job.passages_embedded += advance

        report = build_index(self.settings, progress=progress, on_document=on_document)
        job.build = report.build_id
        job.phase = "reloading"
        self.service.reload()
        job.message = (f"indexed {report.passages} passages from {report.documents} documents "
                       f"({report.embedded} embedded) in {report.seconds:.1f} s")


def get_jobs(request: Request) -> IndexJobs:
    jobs = getattr(request.app.state, "index_jobs", None)
    if jobs is None:
        jobs = request.app.state.index_jobs = IndexJobs(request.app.state)
    return jobs


# --- routes --------------------------------------------------------------------------------


class FileErrorOut(BaseModel):
    file: str
    error: str


class JobOut(BaseModel):
    id: str
    action: Literal["add", "delete"]
    document_id: str
    file: str
    state: Literal["queued", "running", "succeeded", "failed"]
    phase: str
    documents_total: int
    documents_done: int
    passages_done: int
    passages_embedded: int
    passages_total: int
    document_passages: int | None = None
    errors: list[FileErrorOut]
    message: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    seconds: float | None = None
    build: str | None = None


class JobAccepted(BaseModel):
    job: JobOut
    document: DocumentRecord | None = None
    status_url: str = "/v1/index/status"


class IndexInfo(BaseModel):
    build: str | None = None
    passages: int | None = None
    documents: int = 0
    created_at: str | None = None


class IndexStatus(BaseModel):
    state: Literal["idle", "queued", "running"]
    queued: int
    index: IndexInfo
    jobs: list[JobOut] = Field(description="Newest first.")


admin_router = APIRouter(prefix="/v1", tags=["admin"])
router = APIRouter(prefix="/v1", tags=["admin"], dependencies=[Depends(require_api_key)])


def _optional_int(value: str | None, name: str) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(422, "validation_error", f"Invalid request: {name}: must be an integer") from None


@admin_router.post(
    "/documents",
    status_code=202,
    response_model=JobAccepted,
    summary="Add a document (admin key): stored under corpus/, catalogued, re-indexed in the background",
    description="Multipart form: `file` (.pdf, .docx, .html, .htm, .txt, .md; checked by content, at most "
    "`ASSISTANT_MAX_UPLOAD_BYTES`) and optional catalog fields. Follow the job at `GET /v1/index/status`.",
    responses=error_responses(401, 403, 409, 413, 415, 422, 429),
    dependencies=[Depends(require_admin_key)],
)
async def upload_document(
    request: Request,
    file: UploadFile = File(description="The document."),
    id: str | None = Form(default=None, description="Document id (lowercase letters, digits, dashes); default from the file name."),
    title: str | None = Form(default=None, max_length=300),
    publisher: str | None = Form(default=None, max_length=300),
    language: str | None = Form(default=None, max_length=8, description="`en` or `sv`."),
    year: str | None = Form(default=None),
    period: str | None = Form(default=None, max_length=40),
    doc_type: str | None = Form(default=None, max_length=40),
    aliases: str | None = Form(default=None, max_length=2000, description="Comma-separated."),
) -> Any:
    settings: Settings = request.app.state.settings
    cap = int(settings.max_upload_bytes)
    data = await file.read(cap + 1)
    suffix = check_content(file.filename or "", data, cap)
    stem = Path(file.filename or "").stem
    doc_id = (id or "").strip() or slug(stem)
    if not _ID.match(doc_id):
        raise ApiError(422, "validation_error",
                       "Invalid request: id: use 1-80 lowercase letters, digits and dashes, starting with a letter or digit")
    year_value = _optional_int(year, "year")
    if year_value is None:
        found = YEAR_IN_NAME.findall(period or stem)
        year_value = int(found[0]) if found else None
    try:
        doc = DocumentInfo(
            id=doc_id,
            file=f"{doc_id}{suffix}",
            title=(title or "").strip() or stem.replace("_", " ").replace("-", " ").strip() or doc_id,
            publisher=(publisher or "").strip() or "unknown",
            language=(language or "").strip() or "en",
            year=year_value,
            period=(period or "").strip() or None,
            doc_type=(doc_type or "").strip() or "document",
            aliases=[a.strip() for a in (aliases or "").split(",") if a.strip()],
        )
    except ValidationError as exc:
        raise ApiError(422, "validation_error", f"Invalid request: {exc.errors()[0].get('msg', 'invalid')}") from None
    job = get_jobs(request).submit_add(doc, data)
    return {"job": job.public(), "document": DocumentRecord(**doc.model_dump()), "status_url": "/v1/index/status"}


@admin_router.delete(
    "/documents/{document_id}",
    status_code=202,
    response_model=JobAccepted,
    summary="Remove a document (admin key) and re-index in the background",
    description="The file is moved to `corpus/.trash/` and its catalog entry removed.",
    responses=error_responses(401, 403, 404, 429),
    dependencies=[Depends(require_admin_key)],
)
async def delete_document(request: Request, document_id: str = PathParam(max_length=200)) -> Any:
    job = get_jobs(request).submit_delete(document_id)
    return {"job": job.public(), "document": None, "status_url": "/v1/index/status"}


@router.get(
    "/index/status",
    response_model=IndexStatus,
    summary="The serving index and the upload/delete jobs, with their progress and errors per file",
    responses=error_responses(401, 429),
)
async def index_status(request: Request) -> Any:
    return get_jobs(request).status()
