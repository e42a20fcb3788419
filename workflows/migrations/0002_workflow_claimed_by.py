from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="workflow",
            name="claimed_by",
            field=models.CharField(
                blank=True, default="", help_text="Celery task id holding the lease.", max_length=64
            ),
        ),
    ]
