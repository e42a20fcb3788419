from __future__ import annotations

import pytest

from outreach.gate import SendMode, allowlist_allows, validate_send_mode

ALLOWLIST = ["sales@company.com", "@partner.io", "@sub.company.com", "@.wild.org"]


@pytest.mark.parametrize(
    "address",
    [
        "sales@company.com",
        "SALES@Company.COM",
        "  sales@company.com\t",
        "anyone@partner.io",
        "x@sub.company.com",
        "x@a.wild.org",
        "x@deep.a.wild.org",
    ],
)
def test_allowlisted_addresses_match(address):
    assert allowlist_allows(address, ALLOWLIST)


@pytest.mark.parametrize(
    "address",
    [
        "s\u0430les@company.com",  # Cyrillic a (U+0430)
        "sales@c\u043empany.com",  # Cyrillic o (U+043E)
        "sales\uff20company.com",  # fullwidth @
        "\uff53\uff41\uff4c\uff45\uff53@company.com",  # fullwidth letters (NFKC would fold them)
        "sales+x@company.com",  # plus-tags are not stripped
        "other@company.com",  # exact entry only, no @company.com entry
        "x@partner.io.evil.com",
        "x@evilpartner.io",
        "x@sub.partner.io",  # subdomain not named
        "x@deeper.sub.company.com",
        "x@wild.org",  # "@.wild.org" means subdomains only
        "x@partner.io.",  # trailing dot
        "sales@company.com.",
        "sa les@company.com",
        "sales@company .com",
        "sales@company.com\n",  # stripped: allowed; see below for embedded
        "sales@company.com\nbcc@evil.com",
        "sales\x00@company.com",
        "sales@company.com@evil.com",
        "@company.com",
        "@partner.io",
        "",
        "sales",
        '"sales"@company.com',
        "x@[127.0.0.1]",
    ],
)
def test_lookalikes_and_tricks_never_match(address):
    if address == "sales@company.com\n":
        assert allowlist_allows(address, ALLOWLIST)  # only surrounding whitespace is forgiven
        return
    assert not allowlist_allows(address, ALLOWLIST)


def test_an_empty_allowlist_allows_no_one():
    assert not allowlist_allows("sales@company.com", [])


def test_plus_tagged_address_matches_its_exact_entry_or_domain():
    assert allowlist_allows("sales+x@company.com", ["sales+x@company.com"])
    assert allowlist_allows("sales+x@partner.io", ["@partner.io"])


def test_a_malformed_allowlist_entry_is_a_configuration_error():
    mode = SendMode("production", draft_only=False, auto_send=False, allowlist=("company.com",))

    with pytest.raises(ValueError, match="SEND_EMAIL_ALLOWLIST"):
        validate_send_mode(mode)


def test_a_non_ascii_allowlist_entry_is_a_configuration_error():
    mode = SendMode("production", draft_only=False, auto_send=False, allowlist=("@c\u043em.com",))

    with pytest.raises(ValueError, match="SEND_EMAIL_ALLOWLIST"):
        validate_send_mode(mode)


def test_auto_send_while_draft_only_warns_it_has_no_effect():
    mode = SendMode("development", draft_only=True, auto_send=True, allowlist=())

    assert any("has no effect" in w for w in validate_send_mode(mode))


def test_production_send_mode_passes_with_a_warning(caplog):
    mode = SendMode("production", draft_only=False, auto_send=True, allowlist=("a@b.com",))

    warnings = validate_send_mode(mode)

    assert warnings and "SEND MODE IS ON" in warnings[0]
    assert "SEND MODE IS ON" in caplog.text
