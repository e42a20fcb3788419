from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from config import health, metrics

# One look for signing in (issue #15): the admin's login is the app's own page too, and its
# "View site" goes to the dashboard.
admin.site.site_header = "Leadline admin"
admin.site.site_title = "Leadline admin"
admin.site.site_url = "/dashboard/"
admin.site.login_template = "registration/login.html"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard:workflow_list"), name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/webhooks/", include("intake.urls")),
    path("api/", include("config.api_urls")),
    path("dashboard/", include("dashboard.urls")),
]

handler500 = "config.errors.server_error"
