"""/api/: the REST API, its OpenAPI schema and Swagger UI (the webhook lives in intake.urls).

The schema and Swagger UI are staff-only like the API (docs/api.md): SPECTACULAR_SETTINGS'
SERVE_PERMISSIONS, the default of every drf-spectacular view. Swagger UI's assets come
from drf-spectacular-sidecar through the static files, and its init script is a separate
same-origin request (SpectacularSwaggerSplitView), so the page runs under the CSP with no
inline script and no CDN.
"""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from workflows import api

router = SimpleRouter()
router.register("workflows", api.WorkflowViewSet, basename="workflow")
router.register("submissions", api.SubmissionViewSet, basename="submission")

# The webhook is a plain Django view that drf-spectacular cannot see: a hook adds it.
_SCHEMA_SETTINGS = {
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "intake.schema.add_webhook",
    ],
    "ENUM_NAME_OVERRIDES": {"StepEnum": "workflows.models.Step"},
}

urlpatterns = [
    *router.urls,
    path("stats/", api.StatsView.as_view(), name="api-stats"),
    path(
        "schema/",
        SpectacularAPIView.as_view(
            custom_settings=_SCHEMA_SETTINGS,
            authentication_classes=api.AUTHENTICATION,
        ),
        name="api-schema",
    ),
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema",
            authentication_classes=api.AUTHENTICATION,
            template_name="api/swagger_ui.html",
        ),
        name="api-docs",
    ),
]
