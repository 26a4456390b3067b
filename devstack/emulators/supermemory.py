"""Emulator of Supermemory's v5 API: add documents to a namespace and search them by words."""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.emulators.faults import Faults

_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        "a an and are as at be by for from has have i in is it of on or our the this to was we "
        "what when where which who why with you your",
    )
)
Record = dict[str, Any]


def supermemory_error_body(status: int, message: str) -> dict[str, Any]:
    """Return an error body in Supermemory's ErrorResponse shape."""
    return {"error": message, "details": f"HTTP {status}"}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(supermemory_error_body(status, message), status_code=status)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def words(text: str) -> set[str]:
    """Return the meaningful lower-case words of a text."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


def score(query: str, content: str) -> float:
    """Return the share of the query's words that the content contains (0..1)."""
    wanted = words(query)
    return len(wanted & words(content)) / len(wanted) if wanted else 0.0


class SupermemoryEmulator:
    """In-memory Supermemory: documents become memories in their namespace, found by words."""

    def __init__(self, api_key: str | None = None, *, seed: int = 0) -> None:
        self.api_key = api_key  # None accepts any bearer key
        self.faults = Faults(seed=seed, error_body=supermemory_error_body)
        self._lock = threading.Lock()
        self._documents: dict[tuple[str, str], Record] = {}
        self._memories: list[Record] = []
        self._searches: list[Record] = []
        routes = [
            Route("/ns/{namespace}/document", self._add, methods=["POST"]),
            Route("/ns/{namespace}/document/{id}", self._get_document, methods=["GET"]),
            Route("/ns/{namespace}/search", self._search, methods=["POST"]),
            Route("/_emulator/memories", self._http_memories, methods=["GET"]),
            Route("/_emulator/reset", self._http_reset, methods=["POST"]),
            self.faults.control_route(),
        ]
        self.app = self.faults.middleware(Starlette(routes=routes))

    # -- control and inspection ----------------------------------------------------------

    def memories(
        self, namespace: str | None = None, *, container_tag: str | None = None
    ) -> list[Record]:
        """Return stored memories, oldest first, optionally of one namespace (container tag)."""
        wanted = namespace or container_tag
        with self._lock:
            return [dict(m) for m in self._memories if wanted in (None, m["namespace"])]

    def documents(self, namespace: str | None = None) -> list[Record]:
        """Return stored documents, optionally of one namespace."""
        with self._lock:
            return [
                dict(d) for d in self._documents.values() if namespace in (None, d["namespace"])
            ]

    def searches(self) -> list[Record]:
        """Return every search request received (namespace, query, result count)."""
        with self._lock:
            return [dict(s) for s in self._searches]

    def reset(self) -> None:
        """Forget every document, memory, search and fault."""
        with self._lock:
            self._documents.clear()
            self._memories.clear()
            self._searches.clear()
        self.faults.reset()

    # -- the vendor API ------------------------------------------------------------------

    def _auth_error(self, request: Request) -> JSONResponse | None:
        auth = request.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if not key or (self.api_key is not None and key != self.api_key):
            return _error(401, "Unauthorized: missing or invalid API key")
        return None

    async def _add(self, request: Request) -> Response:
        if error := self._auth_error(request):
            return error
        body = await request.json()
        content = body.get("content")
        if not isinstance(content, str) or not content.strip():
            return _error(400, "content is required")
        namespace = request.path_params["namespace"]
        doc_id = body.get("id") or uuid.uuid4().hex
        now = _now()
        with self._lock:
            document = self._documents.get((namespace, doc_id))
            if document is not None and content in document["contents"]:
                return JSONResponse({"id": doc_id, "status": "done"})  # unchanged duplicate
            if document is None:
                document = {"id": doc_id, "namespace": namespace, "contents": [], "created_at": now}
                self._documents[(namespace, doc_id)] = document
            # A reused id appends new information to the document, as the API documents.
            document["contents"].append(content)
            document |= {"metadata": body.get("metadata") or {}, "updated_at": now}
            self._memories.append(
                {
                    "id": uuid.uuid4().hex,
                    "document_id": doc_id,
                    "namespace": namespace,
                    "content": content,
                    "metadata": body.get("metadata") or {},
                    "group": body.get("group"),
                    "created_at": now,
                }
            )
        return JSONResponse({"id": doc_id, "status": "queued"})

    async def _get_document(self, request: Request) -> Response:
        if error := self._auth_error(request):
            return error
        key = (request.path_params["namespace"], request.path_params["id"])
        with self._lock:
            document = self._documents.get(key)
            if document is None:
                return _error(404, "Document not found")
            system = {
                "status": "done",
                "dreamingStatus": "done",
                "createdAt": document["created_at"],
                "updatedAt": document["updated_at"],
            }
            return JSONResponse(
                {
                    "id": document["id"],
                    "title": None,
                    "type": "text",
                    "content": "\n\n".join(document["contents"]),
                    "metadata": document["metadata"],
                    "system": system,
                }
            )

    async def _search(self, request: Request) -> Response:
        if error := self._auth_error(request):
            return error
        started = time.perf_counter()
        body = await request.json()
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            return _error(400, "query is required")
        namespace = request.path_params["namespace"]
        threshold = float(body.get("threshold") or 0.0)
        limit = int(body.get("limit") or 10)
        kind = "chunk" if body.get("searchMode") == "chunks" else "memory"
        scored = [(score(query, m["content"]), m) for m in self.memories(namespace)]
        hits = sorted(
            ((s, m) for s, m in scored if s > 0 and s >= threshold),
            key=lambda pair: (-pair[0], pair[1]["created_at"]),
        )[:limit]
        results = [
            {
                "id": memory["id"],
                kind: memory["content"],
                "metadata": memory["metadata"],
                "similarity": round(similarity, 4),
                "isLatest": True,
                "isInference": False,
                "system": {"updatedAt": memory["created_at"], "createdAt": memory["created_at"]},
            }
            for similarity, memory in hits
        ]
        with self._lock:
            self._searches.append({"namespace": namespace, "query": query, "results": len(hits)})
        elapsed_ms = (time.perf_counter() - started) * 1000
        return JSONResponse({"results": results, "searchTime": round(elapsed_ms, 3)})

    # -- HTTP control endpoints ----------------------------------------------------------

    async def _http_memories(self, request: Request) -> Response:
        namespace = request.query_params.get("namespace")
        return JSONResponse({"memories": self.memories(namespace), "searches": self.searches()})

    async def _http_reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"reset": True})
