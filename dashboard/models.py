"""The dashboard owns no tables; ApiToken only changes how knox's tokens are shown."""

from knox.models import AuthToken


class ApiToken(AuthToken):
    """A knox token as the admin lists it: by its prefix, never its digest."""

    class Meta:
        proxy = True
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.token_key}… ({self.user})"
