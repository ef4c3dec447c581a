"""`If-Match` (RFC 9110 section 13.1.1) on the API's resources.

A resource's entity-tag is its version as a strong ETag, `"3"`. `If-Match` is `*` or a
comma-separated list of entity-tags, compared strongly: a weak tag (`W/"3"`) never matches.
A well-formed list naming no current version is 412; only a syntactically invalid field is 400:
an empty one, one longer than any list of this API's tags needs, or one with obs-text (bytes
above 0x7E, which RFC 9110 tolerates but no tag of this API holds). The parser accepts exactly
what the OpenAPI document's pattern describes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared import errors

MAX_LENGTH = 1024
_TAG = r'(?:W/)?"[\x21\x23-\x7e]*"'  # entity-tag: [weak] DQUOTE *etagc DQUOTE (without obs-text)
_LIST = re.compile(rf"[ \t,]*{_TAG}(?:[ \t]*,[ \t,]*{_TAG})*[ \t,]*")  # 1#entity-tag, empty elements allowed
_ELEMENT = re.compile(r'(W/)?"([^"]*)"')
# The same grammar for the OpenAPI document (an ECMAScript regex over the whole field).
DOCUMENTED_PATTERN = rf"^[ \t]*(\*|{_LIST.pattern})[ \t]*$"


def etag(version: int) -> str:
    """The strong entity-tag of a resource at `version`."""
    return f'"{version}"'


@dataclass(frozen=True)
class IfMatch:
    """A parsed `If-Match` field: `*`, or the opaque parts of its strong entity-tags (weak ones can never match)."""

    any: bool
    strong: frozenset[str]

    def matches(self, version: int) -> bool:
        """Whether the resource, which exists at `version`, satisfies the condition."""
        return self.any or str(version) in self.strong


def parse_if_match(values: list[str]) -> IfMatch | None:
    """The condition of the request's `If-Match` lines (None without any); BadRequest when malformed."""
    if not values:
        return None
    raw = ", ".join(values)
    if len(raw) > MAX_LENGTH:
        raise errors.BadRequest(f"If-Match is longer than {MAX_LENGTH} characters")
    text = raw.strip(" \t")
    if text == "*":
        return IfMatch(any=True, strong=frozenset())
    if not _LIST.fullmatch(text):
        raise errors.BadRequest('If-Match must be "*" or entity-tags in double quotes, e.g. "3" (from the ETag header)')
    return IfMatch(any=False, strong=frozenset(tag for weak, tag in _ELEMENT.findall(text) if not weak))


def version_of(resource: Any) -> int:
    """The version a resource read for a precondition is at (models and normalized documents alike)."""
    version = resource.get("version") if isinstance(resource, dict) else getattr(resource, "version", None)
    if not isinstance(version, int):
        raise TypeError(f"{type(resource).__name__} carries no version to compare If-Match with")
    return version


def required_version(condition: IfMatch, resource: Any) -> int | None:
    """The version a conditional write must still find (so a concurrent change is a 412 or 409, never lost),
    None for `*`; PreconditionFailed (412) when no tag matches."""
    version = version_of(resource)
    if not condition.matches(version):
        raise errors.PreconditionFailed(f"The resource is at {etag(version)}, which If-Match does not name",
                                        extra={"current_version": version})
    return None if condition.any else version
