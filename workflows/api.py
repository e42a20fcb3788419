"""The REST API: thin views over the dashboard's selectors and the services.

Reading needs a staff account (the project-wide ``IsAdminUser``); acting needs the dedicated
permission, which the service checks itself (its PermissionDenied becomes 403). Errors map as:
invalid input -> 400, an action that does not apply to the workflow's state -> 409 with the
service's message ("Already approved by olivia at …"), missing rows -> 404.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Min, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from knox.auth import TokenAuthentication
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard import selectors
from intake.models import FormSubmission
from outreach.services import (
    REFUSALS,
    ActionResult,
    refused,
    workflow_approve,
    workflow_reject,
)
from workflows import serializers as s
from workflows.models import Status, Workflow
from workflows.services import workflows_replay

#: Token (django-rest-knox: hashed, expiring, revocable) first, so an unauthenticated request
#: gets 401 with ``WWW-Authenticate: Token``
#: (DRF takes the challenge from the first class; session auth has none and would give 403).
AUTHENTICATION = [TokenAuthentication, SessionAuthentication]

_ERRORS = {
    400: OpenApiResponse(
        OpenApiTypes.OBJECT,
        description="Invalid parameters or body: field names mapped to messages, or `detail`.",
    ),
    401: OpenApiResponse(s.ErrorSerializer, description="Not authenticated."),
    403: OpenApiResponse(s.ErrorSerializer, description="Not staff, or lacks the permission."),
    404: OpenApiResponse(s.ErrorSerializer, description="No such workflow."),
}
#: Every action that reads a body: DRF refuses a Content-Type it has no parser for.
_MEDIA = {
    415: OpenApiResponse(
        s.ErrorSerializer, description="The body is not JSON, form data or multipart."
    ),
}
_CONFLICT = {
    409: OpenApiResponse(
        s.ActionResultSerializer,
        description="The workflow is no longer awaiting approval (e.g. someone decided first), "
        'or the draft was edited since the version you sent ("edited by X at T since you loaded '
        'it; review again").',
    )
}


def filtered_workflows(params: s.WorkflowFilterSerializer, qs: QuerySet[Workflow]) -> QuerySet:
    """The dashboard's filters, as the API's query parameters spell them."""
    return params.to_filters().apply(qs)


def _filter_params(serializer_class: type[s.WorkflowFilterSerializer], data: Any) -> Any:
    params = serializer_class(data=data)
    params.is_valid(raise_exception=True)
    return params


def _perform(call: Callable[[], ActionResult]) -> Response:
    """Run one service call and turn its outcome or refusal into a response."""
    try:
        result = call()
    except DjangoValidationError as exc:  # field by field, as DRF reports bad input
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)
    except REFUSALS as exc:  # wrong state or no draft: a 409 that says why
        result = ActionResult(False, refused(exc).message, None)
    body = s.ActionResultSerializer(result).data
    return Response(body, status=status.HTTP_200_OK if result.ok else status.HTTP_409_CONFLICT)


class WorkflowCursorPagination(CursorPagination):
    """Newest first, 50 a page, by an opaque cursor on (created_at, id): every page costs one
    index range scan. Page numbers needed a COUNT of the table and an OFFSET; at 1M workflows
    page 2,000 took 940 ms."""

    ordering = ("-created_at", "-id")
    page_size = 50

    def decode_cursor(self, request: Request) -> Any:
        """DRF's cursor, refused (404 "Invalid cursor", as DRF answers a malformed one) when its
        position is not a time: an edited cursor must not reach the query as a 500."""
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                valid = parse_datetime(cursor.position) is not None
            except ValueError:
                valid = False
            if not valid:
                raise NotFound(self.invalid_cursor_message)
        return cursor


@extend_schema_view(
    list=extend_schema(
        summary="List workflows, newest first",
        parameters=[s.WorkflowFilterSerializer],
        responses={200: s.WorkflowListSerializer(many=True), **_ERRORS},
    ),
    retrieve=extend_schema(
        summary="One workflow with its submission, draft, errors and step log",
        responses={200: s.WorkflowDetailSerializer, **_ERRORS},
    ),
)
class WorkflowViewSet(viewsets.ReadOnlyModelViewSet):
    authentication_classes = AUTHENTICATION
    pagination_class = WorkflowCursorPagination
    queryset = Workflow.objects.none()  # for the schema; get_queryset builds the real one
    lookup_value_regex = r"\d+"

    def get_serializer_class(self) -> type:
        return s.WorkflowListSerializer if self.action == "list" else s.WorkflowDetailSerializer

    def get_queryset(self) -> QuerySet[Workflow]:
        if self.action == "list":
            params = _filter_params(s.WorkflowFilterSerializer, self.request.query_params)
            return filtered_workflows(params, selectors.list_queryset())
        return (
            Workflow.objects.select_related("submission", "draft__approver")
            .defer("submission__raw_payload")
            .prefetch_related("errors")
        )

    @extend_schema(
        summary="Approve a waiting draft (optionally editing subject/body first)",
        request=s.ApproveRequestSerializer,
        responses={200: s.ActionResultSerializer, **_ERRORS, **_MEDIA, **_CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        workflow = get_object_or_404(Workflow.objects.only("id"), pk=pk)
        body = s.ApproveRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return _perform(
            lambda: workflow_approve(
                workflow_id=workflow.pk,
                user=request.user,
                subject=body.validated_data.get("subject"),
                body=body.validated_data.get("body"),
                version=body.validated_data["version"],
            )
        )

    @extend_schema(
        summary="Reject a waiting draft; nothing is sent",
        request=s.RejectRequestSerializer,
        responses={200: s.ActionResultSerializer, **_ERRORS, **_MEDIA, **_CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        workflow = get_object_or_404(Workflow.objects.only("id"), pk=pk)
        body = s.RejectRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return _perform(
            lambda: workflow_reject(
                workflow_id=workflow.pk,
                user=request.user,
                reason=body.validated_data["reason"],
                version=body.validated_data["version"],
            )
        )

    @extend_schema(
        summary="Replay one workflow: a new run (trigger=replay) of the same submission",
        request=s.ReplayRequestSerializer,
        responses={
            201: s.ReplayResultSerializer,
            **_ERRORS,
            **_MEDIA,
            409: OpenApiResponse(
                s.ReplayResultSerializer,
                description='Refused: the submission has a live run ("already replayed as #N").',
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: str) -> Response:
        workflow = get_object_or_404(Workflow.objects.only("id"), pk=pk)
        body = s.ReplayRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = workflows_replay(
            workflow_ids=[workflow.pk],
            user=request.user,
            shadow=body.validated_data["shadow"],
            reason=body.validated_data["reason"] or "api: replay",
        )
        code = status.HTTP_409_CONFLICT if result.refused else status.HTTP_201_CREATED
        return Response(s.ReplayResultSerializer(result).data, status=code)

    @extend_schema(
        summary="Replay every failed workflow matching the filters (oldest first, up to limit)",
        operation_id="workflows_replay_failed",
        request=s.BulkReplayRequestSerializer,
        responses={200: s.BulkReplayResultSerializer, **_ERRORS, **_MEDIA},
    )
    @action(detail=False, methods=["post"], url_path="replay")
    def replay_failed(self, request: Request) -> Response:
        params = _filter_params(s.BulkReplayRequestSerializer, request.data)
        ids, more = selectors.replay_candidates(
            params.to_filters(), limit=params.validated_data["limit"]
        )
        result = workflows_replay(
            workflow_ids=ids,
            user=request.user,
            shadow=params.validated_data["shadow"],
            reason=params.validated_data["reason"] or "api: replay failed",
        )
        data = {
            "created": result.created,
            "shadow": result.shadow,
            "refused": result.refused,
            "matched": len(ids),
        }
        return Response(s.BulkReplayResultSerializer({**data, "more": more}).data)


@extend_schema_view(
    retrieve=extend_schema(
        summary="One submission: normalised fields, the raw payload and its runs",
        responses={200: s.SubmissionSerializer, **_ERRORS},
    )
)
class SubmissionViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    authentication_classes = AUTHENTICATION
    serializer_class = s.SubmissionSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[FormSubmission]:
        return FormSubmission.objects.prefetch_related("workflows")


class StatsView(APIView):
    authentication_classes = AUTHENTICATION

    @extend_schema(
        summary="Queue health: counts per status, oldest waiting work, median latencies",
        responses={200: s.StatsSerializer, 401: _ERRORS[401], 403: _ERRORS[403]},
    )
    def get(self, request: Request) -> Response:
        return Response(s.StatsSerializer(workflow_stats()).data)


def workflow_stats(now: dt.datetime | None = None) -> dict[str, Any]:
    """Four aggregate queries, plus the dashboard's two median queries."""
    now = now or timezone.now()
    counts = dict.fromkeys(Status.values, 0)
    counts.update(
        Workflow.objects.order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )

    def oldest_age(status_value: str) -> float | None:
        oldest = Workflow.objects.filter(status=status_value).aggregate(at=Min("created_at"))["at"]
        return (now - oldest).total_seconds() if oldest else None

    def seconds(value: dt.timedelta | None) -> float | None:
        return value.total_seconds() if value is not None else None

    return {
        "counts": counts,
        "total": sum(counts.values()),
        "oldest_pending_age_seconds": oldest_age(Status.PENDING),
        "awaiting_approval": counts[Status.AWAITING_APPROVAL],
        "oldest_awaiting_approval_age_seconds": oldest_age(Status.AWAITING_APPROVAL),
        "median_time_to_draft_seconds": seconds(selectors.median_time_to_draft()),
        "median_time_to_approval_seconds": seconds(selectors.median_time_to_approval()),
    }
