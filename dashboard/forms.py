from __future__ import annotations

from django import forms

from dashboard.models import OperatorPreferences
from dashboard.selectors import WorkflowFilters
from workflows.models import Status


class FilterForm(forms.Form):
    """The list's filters; always bound to request.GET, so a URL reproduces the view."""

    status = forms.ChoiceField(choices=[("", "All"), *Status.choices], required=False)
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "email, name or company", "type": "search"}),
    )
    form = forms.CharField(required=False, max_length=128, label="Form")
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def filters(self) -> WorkflowFilters:
        data = self.cleaned_data if self.is_valid() else {}
        return WorkflowFilters(
            status=data.get("status") or "",
            q=(data.get("q") or "").strip(),
            form_id=(data.get("form") or "").strip(),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )


def version_field() -> forms.IntegerField:
    """The draft version the operator read; decisions on a newer draft are refused (409)."""
    return forms.IntegerField(
        min_value=1,
        max_value=2**31 - 1,
        widget=forms.HiddenInput,
        error_messages={"required": "The page did not say which draft version you read: reload."},
    )


class DraftForm(forms.Form):
    subject = forms.CharField(max_length=300)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 12}))
    version = version_field()


class ApproveForm(forms.Form):
    """Approve from the detail page: the version read, and the text as it stands in the form."""

    version = version_field()
    subject = forms.CharField(max_length=300, required=False)
    body = forms.CharField(required=False, strip=False)


class RejectForm(forms.Form):
    reason = forms.CharField(
        max_length=2000, widget=forms.TextInput(attrs={"placeholder": "Why is it rejected?"})
    )
    version = version_field()


def versions_from(data) -> dict[int, int]:
    """``version_<id>`` fields of a bulk form: per workflow id, the draft version on screen."""
    versions = {}
    for key, value in data.items():
        name, _, pk = key.partition("_")
        if name == "version" and is_id(pk) and is_id(value):
            versions[int(pk)] = int(value)
    return versions


def is_id(value: object) -> bool:
    """A positive row id that fits a PostgreSQL integer ("²" is a digit to str.isdigit)."""
    text = str(value)
    return text.isascii() and text.isdigit() and 0 < int(text) < 2**31


class ResolveSendForm(forms.Form):
    sent = forms.TypedChoiceField(
        choices=[("yes", "Mark as sent"), ("no", "Mark as not sent")],
        coerce=lambda v: v == "yes",
    )
    note = forms.CharField(
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "How you checked (e.g. found in ESP log)"}),
    )


class ReplayForm(forms.Form):
    shadow = forms.BooleanField(required=False, help_text="Look up and draft only; never send.")
    reason = forms.CharField(max_length=2000, required=False)


class BulkDecisionForm(forms.Form):
    """Bulk approve/reject in the inbox. ``confirm`` is the no-JavaScript confirmation; with
    htmx the button's hx-confirm dialog asks and then sends confirm=yes."""

    ids = forms.TypedMultipleChoiceField(coerce=int, choices=[])
    action = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    reason = forms.CharField(max_length=2000, required=False)
    confirm = forms.BooleanField(
        required=True,
        label="I have read the selected drafts",
        error_messages={"required": "Tick the confirmation box to act on several drafts."},
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Any integer is acceptable here: the services decide per id what may happen.
        self.fields["ids"].valid_value = is_id  # type: ignore[attr-defined]
        self.fields["ids"].error_messages["required"] = "Select at least one draft."

    def clean(self) -> dict:
        data = super().clean()
        if data.get("action") == "reject" and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why the drafts are rejected.")
        return data


class ReplayFailedForm(forms.Form):
    confirm = forms.BooleanField(
        required=True,
        error_messages={"required": "Tick the confirmation box to replay every match."},
    )


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = OperatorPreferences
        fields = ["time_zone"]
        labels = {"time_zone": "Time zone"}
