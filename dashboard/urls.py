from django.urls import path

from dashboard import ai_draft, views

app_name = "dashboard"
urlpatterns = [
    path("", views.workflow_list, name="workflow_list"),
    path("overview/", views.overview_fragment, name="overview"),
    path("replay-failed/", views.replay_failed, name="replay_failed"),
    path("replay-selected/", views.replay_selected, name="replay_selected"),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/bulk/", views.inbox_bulk, name="inbox_bulk"),
    path("preferences/", views.preferences, name="preferences"),
    path("workflows/<int:pk>/", views.workflow_detail, name="workflow_detail"),
    path("workflows/<int:pk>/approve/", views.workflow_approve_view, name="workflow_approve"),
    path("workflows/<int:pk>/reject/", views.workflow_reject_view, name="workflow_reject"),
    path("workflows/<int:pk>/replay/", views.workflow_replay_view, name="workflow_replay"),
    path("workflows/<int:pk>/draft/", views.draft_edit_view, name="draft_edit"),
    path("workflows/<int:pk>/resolve-send/", views.resolve_send_view, name="resolve_send"),
    # issue #17: AI drafts
    path(
        "workflows/<int:pk>/draft/regenerate/",
        ai_draft.draft_regenerate_view,
        name="draft_regenerate",
    ),
    path(
        "workflows/<int:pk>/draft/use-template/",
        ai_draft.draft_use_template_view,
        name="draft_use_template",
    ),
]
