"""The outbox relay's wake-up call (issue #16): every INSERT into ``workflows`` sends one
``NOTIFY leadline_outbox`` (a statement trigger, delivered at commit, so a relay never wakes
for rows it cannot see yet). PostgreSQL only; on SQLite the relay polls."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION leadline_outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('leadline_outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS workflows_outbox_notify ON workflows;
CREATE TRIGGER workflows_outbox_notify AFTER INSERT ON workflows
    FOR EACH STATEMENT EXECUTE FUNCTION leadline_outbox_notify();
"""
DROP = """
DROP TRIGGER IF EXISTS workflows_outbox_notify ON workflows;
DROP FUNCTION IF EXISTS leadline_outbox_notify();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("workflows", "0005_one_live_run_per_submission")]

    operations = [migrations.RunPython(create, drop)]
