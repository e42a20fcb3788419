"""The webhook's one statement runs without a transaction of its own (issue #16): a
delivery whose lead keys are all free is stored by that one statement alone, which is atomic.
If a concurrent delivery takes one of its keys between the statement's check and its insert,
the statement calls this function, which aborts it whole (SQLSTATE LL001), and the delivery
is stored again the transactional way (intake/services.py). PostgreSQL only."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION leadline_lead_key_taken() RETURNS void AS $$
BEGIN
    RAISE EXCEPTION 'a lead key of this delivery was taken meanwhile' USING ERRCODE = 'LL001';
END;
$$ LANGUAGE plpgsql VOLATILE;
"""
DROP = "DROP FUNCTION IF EXISTS leadline_lead_key_taken();"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("intake", "0007_partial_fk_indexes")]

    operations = [migrations.RunPython(create, drop)]
