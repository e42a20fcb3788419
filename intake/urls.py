from django.urls import re_path

from intake import views

app_name = "intake"
urlpatterns = [
    # HubSpot is configured with whichever spelling the operator typed: accept both.
    re_path(r"^hubspot/forms/?$", views.hubspot_forms, name="hubspot-forms"),
]
