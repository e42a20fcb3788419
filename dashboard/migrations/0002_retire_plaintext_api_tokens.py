"""Issue #14: drop DRF's plaintext API tokens (``authtoken_token``).

API tokens are now django-rest-knox tokens, stored as SHA-512 digests. The old table held every
token in clear; it is dropped, and its migration records with it, so a database carried over
from an older release keeps no usable plaintext token. Operators create new tokens with
``manage.py create_api_token --user NAME`` (docs/api.md). Not reversible in content: going
back leaves the table gone (DRF's authtoken migrations recreate it empty if re-enabled).
"""

from django.db import migrations


def drop_plaintext_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" in connection.introspection.table_names():
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM authtoken_token")
            (count,) = cursor.fetchone()
        schema_editor.execute("DROP TABLE authtoken_token")
        if count:
            print(f"\n  Retired {count} plaintext API token(s); create new ones: create_api_token")
    schema_editor.execute("DELETE FROM django_migrations WHERE app = %s", ["authtoken"])


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0001_operator_groups")]

    operations = [migrations.RunPython(drop_plaintext_tokens, migrations.RunPython.noop)]
