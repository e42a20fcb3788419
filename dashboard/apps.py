from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Dashboard"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from dashboard import timezones  # noqa: F401  (connects the login signal)

        user_logged_out.connect(_say_logged_out, dispatch_uid="dashboard.logged_out")


def _say_logged_out(sender, request, user, **kwargs) -> None:
    """Logging out (dashboard or admin) lands on the login page, which says so (issue #15)."""
    from django.contrib import messages

    if request is not None and hasattr(request, "_messages"):
        messages.info(request, "You are logged out.")
