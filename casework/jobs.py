"""What the pages of a background job (a web import, an answered sheet) share: its problems a page at a time,
and the figures its progress bar polls."""

from __future__ import annotations

from typing import Any, Protocol

from django.core.paginator import Page, Paginator
from django.http import HttpRequest, JsonResponse

PROBLEMS_PER_PAGE = 200


class ProgressJob(Protocol):
    state: Any
    done: int
    total: int
    problems: str
    problem_count: int

    @property
    def percent(self) -> int: ...

    @property
    def working(self) -> bool: ...

    def get_state_display(self) -> str: ...


def problems_page(job: ProgressJob, request: HttpRequest) -> Page[str] | None:
    """The page of the job's problems (one a line: file:line: column: reason) that the request asks for."""
    if not job.problem_count:
        return None
    return Paginator(job.problems.splitlines(), PROBLEMS_PER_PAGE).get_page(request.GET.get("page"))


def progress_response(job: ProgressJob, **more: int) -> JsonResponse:
    """The progress bar's figures, for a page that polls; ``more``: the job's own counts."""
    return JsonResponse(
        {
            "state": job.state,
            "state_label": job.get_state_display(),
            "done": job.done,
            "total": job.total,
            "percent": job.percent,
            "working": job.working,
            "problems": job.problem_count,
            **more,
        }
    )
