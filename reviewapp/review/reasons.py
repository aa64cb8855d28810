"""What a rejection's reason may be: the one validator for single and bulk rejects.

A reason is shown to reviewers and operators and kept in the audit trail, so it must be
text a person can read: bounded, with something visible in it, and without control
characters (PostgreSQL cannot even store a NUL; bidi overrides make text read backwards).
"""

from __future__ import annotations

import unicodedata

from django.conf import settings

from reviewapp.review.errors import DecisionRefused

REASON_MAX_CHARS = 2000

# Letters and symbols that render as nothing, although Unicode does not call them format
# characters: Hangul fillers, the blank Braille pattern.
_BLANK_GRAPHICS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Embeddings, overrides and isolates: they reorder how the rest of the text is displayed.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ALLOWED_CONTROLS = frozenset("\n\t")


def _visible(char: str) -> bool:
    category = unicodedata.category(char)
    # Separators (Z*), controls and format characters (C*), and combining marks (M*) on
    # their own show nothing; private-use characters (Co) at least show a box.
    return category == "Co" or (category[0] not in "ZCM" and char not in _BLANK_GRAPHICS)


def clean_reason(reason: str | None) -> str:
    """The reason, stripped; "" when there is none. Raises DecisionRefused."""
    reason = (reason or "").replace("\r\n", "\n").strip()
    if len(reason) > REASON_MAX_CHARS:
        raise DecisionRefused(
            f"the reason is {len(reason):,} characters long; at most {REASON_MAX_CHARS:,} "
            "are kept, shorten it"
        )
    for char in reason:
        category = unicodedata.category(char)
        bad_control = category == "Cc" and char not in _ALLOWED_CONTROLS
        if bad_control or category == "Cs" or char in _BIDI_CONTROLS:
            raise DecisionRefused(
                f"the reason contains a control character (U+{ord(char):04X}); remove it"
            )
    if reason and not any(_visible(char) for char in reason):
        raise DecisionRefused("the reason has only invisible characters; write a visible one")
    return reason


def clean_tags(tags: list[str] | None) -> list[str]:
    tags = [t for t in (tags or []) if t]
    unknown = [t for t in tags if t not in settings.REJECT_REASON_TAGS]
    if unknown:
        # Not echoed: the request could hold anything, the configured list is what helps.
        raise DecisionRefused(
            f"{len(unknown)} unknown reason tag(s); pick from: "
            + ", ".join(settings.REJECT_REASON_TAGS)
        )
    return tags


def clean_reason_and_tags(reason: str | None, tags: list[str] | None) -> tuple[str, list[str]]:
    """(reason, tags) of a rejection, or DecisionRefused saying what is wrong."""
    tags = clean_tags(tags)
    reason = clean_reason(reason)
    if not reason and not tags:
        raise DecisionRefused("a rejection needs a reason: pick a tag or write one")
    return reason, tags
