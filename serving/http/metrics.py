"""Prometheus metrics, one registry per app (so several apps in one process never collide)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.routing import Match

from vraagbaak_core.types import Answer

_LAT = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("vraagbaak_http_requests", "HTTP requests", ["route", "method", "status"], registry=r)
        self.latency = Histogram(
            "vraagbaak_http_request_seconds", "HTTP request latency", ["route", "method"], buckets=_LAT, registry=r
        )
        self.retrieval = Histogram("vraagbaak_retrieval_seconds", "Retrieval latency", buckets=_LAT, registry=r)
        self.ttft = Histogram("vraagbaak_time_to_first_token_seconds", "Time to first token", buckets=_LAT, registry=r)
        self.tokens = Counter("vraagbaak_generated_tokens", "Tokens generated (approximate: stream deltas)", registry=r)
        self.abstentions = Counter("vraagbaak_abstentions", "Answers withheld: nothing relevant retrieved", registry=r)
        self.feedback = Counter("vraagbaak_feedback", "Staff feedback on answers", ["vote"], registry=r)
        self.fallbacks = Counter(
            "vraagbaak_fallback_answers",
            "Extractive answers given because the language model was unavailable (reason: unreachable, busy)",
            ["reason"], registry=r,
        )
        self.claims = Counter(
            "vraagbaak_answer_claims",
            "Answer sentences by the answer check's status (supported, unsupported, unverifiable)",
            ["status"], registry=r,
        )
        self.check_actions = Counter(
            "vraagbaak_answer_check_actions",
            "Answers the answer check changed (action: dropped = unsupported sentences removed, "
            "fallback = replaced by the extractive answer)",
            ["action"], registry=r,
        )

    def observe_retrieval(self, ms: float, abstained: bool) -> None:
        self.retrieval.observe(ms / 1000)
        if abstained:
            self.abstentions.inc()

    def observe_ttft(self, seconds: float) -> None:
        self.ttft.observe(seconds)

    def observe_answer(self, answer: Answer) -> None:
        """Tokens (approximate), the fallback's reason, the answer check's claims and what it changed."""
        self.tokens.inc(max(1, len(answer.text) // 4))
        if answer.fallback is not None and answer.check_action != "fallback":
            self.fallbacks.labels(answer.fallback).inc()
        for claim in answer.claims:
            self.claims.labels(claim.status).inc()
        if answer.check_action is not None:
            self.check_actions.labels(answer.check_action).inc()

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def _route_template(request: Request) -> str:
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match == Match.FULL:
            return str(getattr(route, "path", request.url.path))
    return "unmatched"


def install_metrics_middleware(app: FastAPI, metrics: Metrics) -> None:
    @app.middleware("http")
    async def _observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        t0 = time.perf_counter()
        route = _route_template(request)
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            metrics.requests.labels(route, request.method, str(status)).inc()
            metrics.latency.labels(route, request.method).observe(time.perf_counter() - t0)
