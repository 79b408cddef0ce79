"""A V2 scroll page as the scroll tools use it: the envelope validated by its model, the hits as plain
dicts.

Validating 10,000 hits into `Hit` models and dumping each back to a dict cost more than reading the
page (issue 10: ~50 ms to validate and ~190 ms to dump a 10,000-hit page, against ~120 ms for
`json.loads` of it). A hit as the API sends it (`_index`/`_id` text or null, `_score` a number or
null, `_source` an object, no key that is also a field's name) is checked and copied here in a few
microseconds into exactly the dict `Hit.model_validate(hit).model_dump(by_alias=True)` returns. A page
with any other hit goes through the models whole, so what is accepted, what it becomes and what a
malformed page's error says are the models' in every case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from cm_mcp.api.responses import Hit, LogsScrollResponse, V2Meta, WorkloadsScrollResponse

ScrollEndpoint = Literal["logs_scroll", "workloads_scroll"]

#: The key of the hit list in `data`, per endpoint.
HITS_KEY: Final[Mapping[str, str]] = {"logs_scroll": "logs", "workloads_scroll": "workloads"}
_MODELS: Final[Mapping[str, type[LogsScrollResponse | WorkloadsScrollResponse]]] = {
    "logs_scroll": LogsScrollResponse,
    "workloads_scroll": WorkloadsScrollResponse,
}
#: Field names `Hit` also accepts in place of the aliases (validate_by_name): a hit using one goes
#: through the model, which decides between the two.
_FIELD_NAMES: Final = frozenset(name for name in Hit.model_fields)
_ALIASES: Final = frozenset(("_index", "_id", "_score", "_source"))
#: Integers a float holds exactly; past this the model's conversion decides.
_EXACT_INT: Final = 2**53


@dataclass(frozen=True)
class ScrollPage:
    """One V2 scroll page: `meta`, `data.count` and the hits as `Hit.model_dump(by_alias=True)` dicts."""

    meta: V2Meta
    count: int | None
    hits: list[dict[str, Any]]


def parse_scroll_page(endpoint_name: ScrollEndpoint, body: Mapping[str, Any]) -> ScrollPage:
    """The page of a logs_scroll or workloads_scroll 200 body; pydantic.ValidationError when it does
    not fit its model (the same error, naming the same fields, as `parse_response`)."""
    key = HITS_KEY[endpoint_name]
    model = _MODELS[endpoint_name]
    data = body.get("data")
    hits = plain_hits(data.get(key, [])) if isinstance(data, dict) else None
    if hits is None:  # not the plain shape (or not a page): the models decide, and name what is wrong
        response = model.model_validate(body)
        listed = response.data.logs if isinstance(response, LogsScrollResponse) else response.data.workloads
        return ScrollPage(
            response.meta, response.data.count, [hit.model_dump(by_alias=True) for hit in listed]
        )
    assert isinstance(data, dict)
    envelope = model.model_validate({**body, "data": {**data, key: []}})
    return ScrollPage(envelope.meta, envelope.data.count, hits)


def plain_hits(hits: object) -> list[dict[str, Any]] | None:
    """`[Hit.model_validate(h).model_dump(by_alias=True) for h in hits]` when every hit has the plain
    shape (see the module docstring), else None. The `_source` objects are shared, not copied."""
    if type(hits) is not list:
        return None
    plain: list[dict[str, Any]] = []
    append = plain.append
    for hit in hits:
        if type(hit) is not dict or not _FIELD_NAMES.isdisjoint(hit):
            return None
        index = hit.get("_index")
        ident = hit.get("_id")
        score = hit.get("_score")
        source = hit.get("_source", {})
        if (
            (index is not None and type(index) is not str)
            or (ident is not None and type(ident) is not str)
            or type(source) is not dict
        ):
            return None
        if score is not None and type(score) is not float:
            if type(score) is not int or not -_EXACT_INT <= score <= _EXACT_INT:
                return None
            score = float(score)
        row = {"_index": index, "_id": ident, "_score": score, "_source": source}
        if not hit.keys() <= _ALIASES:  # unknown keys are kept, after the fields (as the model dumps)
            row.update((name, value) for name, value in hit.items() if name not in _ALIASES)
        append(row)
    return plain
