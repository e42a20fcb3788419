"""Create the "Operators" and "Viewers" groups.

Permissions are normally created by a post_migrate signal, i.e. after *all* migrations; on a
fresh database they do not exist yet when this runs, so create them first for the apps whose
permissions the groups need.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

APPS = ("intake", "workflows", "outreach")
VIEW_PERMISSIONS = [
    ("intake", "view_formsubmission"),
    ("workflows", "view_workflow"),
    ("workflows", "view_workflowerror"),
    ("workflows", "view_auditevent"),
    ("outreach", "view_emaildraft"),
]
OPERATOR_PERMISSIONS = [
    ("workflows", "approve_workflow"),
    ("workflows", "reject_workflow"),
    ("workflows", "replay_workflow"),
]


def _permissions(apps, pairs):
    Permission = apps.get_model("auth", "Permission")
    found = []
    for app_label, codename in pairs:
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return found


def create_groups(apps, schema_editor):
    for app_label in APPS:
        app_config = apps.get_app_config(app_label)
        # Historical app configs have no models module; create_permissions skips those.
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    viewers, _ = Group.objects.get_or_create(name="Viewers")
    viewers.permissions.add(*_permissions(apps, VIEW_PERMISSIONS))
    operators, _ = Group.objects.get_or_create(name="Operators")
    operators.permissions.add(*_permissions(apps, VIEW_PERMISSIONS + OPERATOR_PERMISSIONS))


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["Operators", "Viewers"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("intake", "0001_initial"),
        ("workflows", "0002_workflow_claimed_by"),
        ("outreach", "0002_send_outcome"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
