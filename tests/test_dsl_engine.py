"""Both engines (DuckDB and tantivy) against a brute-force evaluator over a few thousand seeded random
documents: every test runs on each, so the two give the same answers wherever the oracle decides."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cm_mcp.dsl import ENGINES, DocQuery, DSLError, Engine, SearchIndex, open_index
from cm_mcp.dsl.datemath import iso_ms, parse_iso_ms
from cm_mcp.dsl.query import term_candidates, tokenize
from cm_mcp.dsl.schema import MISSING_TS, TEXT_FIELDS
from cm_mcp.dsl.spec import timestamp_ms as _timestamp_ms

N_DOCS = 2500
BASE_MS = parse_iso_ms("2026-11-24T00:00:00Z")
WORDS = [
    "timeout",
    "Connection",
    "refused",
    "payment",
    "failed",
    "order",
    "processed",
    "retry",
    "GET",
    "upstream",
]
LEVELS = ["INFO", "WARN", "ERROR", "DEBUG", "info"]


def make_doc(i: int, rnd: random.Random) -> dict[str, Any]:
    # Small timestamp space so many documents share a millisecond (exercises tie ordering).
    ts = BASE_MS + rnd.randrange(3 * 86_400) * 1000 + rnd.choice([0, 0, 123, 999])
    src: dict[str, Any] = {
        "@timestamp": iso_ms(ts),
        "message": " ".join(rnd.choices(WORDS, k=rnd.randint(1, 8))),
    }
    if rnd.random() < 0.85:
        src["regex"] = {"extractions": {"logLevel": rnd.choice(LEVELS)}}
    if rnd.random() < 0.9:
        code: Any = rnd.choice([200, 200, 201, 404, 500, 503])
        src["response"] = {
            "status_code": str(code) if rnd.random() < 0.1 else code,
            "duration_ms": round(rnd.random() * 100, 3),
        }
    if rnd.random() < 0.5:
        src["request.method"] = rnd.choice(["GET", "POST"])  # literal dotted key
    elif rnd.random() < 0.8:
        src["request"] = {"method": rnd.choice(["GET", "POST", "get"])}
    if rnd.random() < 0.3:
        src["tags"] = rnd.sample(["a", "b", "c", "d"], k=rnd.randint(0, 3))
    if rnd.random() < 0.5:
        src["atr"] = {"domain_name": rnd.choice(["payments", "orders", "search"]), "size": rnd.randint(-5, 5)}
    if rnd.random() < 0.2:
        src["error"] = {
            "message": " ".join(rnd.choices(WORDS, k=rnd.randint(1, 4))),
            "code": "E-" + rnd.choice("ab"),
        }
    return {"_index": f"logs-{i % 3}", "_id": f"d{i:05d}", "_source": src}


DOCS = [make_doc(i, random.Random(i)) for i in range(N_DOCS)]


# -- brute force ------------------------------------------------------------------------------------------
def leaves(node: Any, parts: list[str]) -> Iterator[Any]:
    if isinstance(node, list):
        for item in node:
            yield from leaves(item, parts)
        return
    if not parts:
        yield node
        return
    if not isinstance(node, Mapping):
        return
    for i in range(1, len(parts) + 1):
        key = ".".join(parts[:i])
        if key in node:
            yield from leaves(node[key], parts[i:])


def values(doc: Mapping[str, Any], field: str) -> list[Any]:
    field = field.removesuffix(".keyword")
    return [v for v in leaves(doc["_source"], field.split(".")) if v is not None]


def scalar_leaves(v: Any) -> Iterator[Any]:
    if isinstance(v, Mapping):
        for x in v.values():
            yield from scalar_leaves(x)
    elif isinstance(v, list):
        for x in v:
            yield from scalar_leaves(x)
    elif v is not None:
        yield v


def term_match(leaf: Any, value: Any) -> bool:
    for c in term_candidates(value):
        if isinstance(c, bool) or isinstance(leaf, bool):
            if isinstance(c, bool) and isinstance(leaf, bool) and c == leaf:
                return True
        elif isinstance(c, str):
            if isinstance(leaf, str) and leaf == c:
                return True
        elif isinstance(leaf, int | float) and float(leaf) == float(c):
            return True
    return False


def ts_of(doc: Mapping[str, Any]) -> int:
    return parse_iso_ms(doc["_source"]["@timestamp"])


def brute(doc: Mapping[str, Any], flt: Mapping[str, Any]) -> bool:
    ((kind, body),) = flt.items()
    if kind == "bool":
        must = [brute(doc, f) for f in body.get("must", []) + body.get("filter", [])]
        should = [brute(doc, f) for f in body.get("should", [])]
        must_not = [brute(doc, f) for f in body.get("must_not", [])]
        ok = all(must) and not any(must_not)
        if should and not must:
            ok = ok and any(should)
        return ok
    if kind == "exists":
        return any(True for v in values(doc, body["field"]) for _ in scalar_leaves(v))
    ((field, spec),) = body.items()
    if kind == "term":
        return any(term_match(v, spec) for v in values(doc, field))
    if kind == "terms":
        return any(term_match(v, s) for v in values(doc, field) for s in spec)
    if kind == "range":
        if field == "@timestamp":
            t = ts_of(doc)
            lo, hi = (
                parse_iso_ms(spec.get("gte", "1970-01-01T00:00:00Z")),
                parse_iso_ms(spec.get("lte", "2100-01-01T00:00:00Z")),
            )
            return lo <= t <= hi
        nums = [v for v in values(doc, field) if isinstance(v, int | float) and not isinstance(v, bool)]
        checks = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__, "lte": float.__le__}
        return any(all(checks[op](float(v), float(b)) for op, b in spec.items()) for v in nums)
    if kind in ("match", "match_phrase") and field.removesuffix(".keyword") not in TEXT_FIELDS:
        # Keyword fields: the whole value, exactly, ignoring case for strings.
        value = spec["query"] if isinstance(spec, Mapping) else spec
        if field.endswith(".keyword") or not isinstance(value, str):
            return any(term_match(v, value) for v in values(doc, field))
        return any(
            term_match(v, value) or (isinstance(v, str) and v.lower() == value.lower())
            for v in values(doc, field)
        )
    if kind == "match":
        q = tokenize(spec["query"])
        toks = {t for v in values(doc, field) if isinstance(v, str) for t in tokenize(v)}
        return all(t in toks for t in q) if spec.get("operator") == "and" else any(t in toks for t in q)
    if kind == "match_phrase":
        q = tokenize(spec)
        for v in values(doc, field):
            if isinstance(v, str):
                toks = tokenize(v)
                if any(toks[i : i + len(q)] == q for i in range(len(toks))):
                    return True
        return False
    raise AssertionError(kind)


def random_filter(rnd: random.Random, depth: int = 0) -> dict[str, Any]:
    kind = rnd.choice(
        ["term", "terms", "range", "range", "exists", "match", "match_phrase", "bool"]
        if depth < 2
        else ["term", "range", "exists"]
    )
    if kind == "term":
        field, value = rnd.choice([
            ("regex.extractions.logLevel", rnd.choice(LEVELS)), ("response.status_code", rnd.choice([200, "500", 404.0])),
            ("request.method.keyword", rnd.choice(["GET", "get"])), ("tags", rnd.choice("abcd")), ("atr.size", rnd.randint(-5, 5)),
        ])  # fmt: skip
        return {"term": {field: value}}
    if kind == "terms":
        return {"terms": {"regex.extractions.logLevel": rnd.sample(LEVELS, k=2)}}
    if kind == "range":
        field = rnd.choice(["response.duration_ms", "response.status_code", "atr.size", "@timestamp"])
        if field == "@timestamp":
            a, b = sorted(rnd.randrange(BASE_MS, BASE_MS + 3 * 86_400_000) for _ in range(2))
            return {"range": {field: {"gte": iso_ms(a), "lte": iso_ms(b)}}}
        ops = rnd.sample(["gt", "gte", "lt", "lte"], k=rnd.randint(1, 2))
        if set(ops) in ({"gt", "gte"}, {"lt", "lte"}):
            ops = ops[:1]
        hi = {"response.duration_ms": 100, "response.status_code": 600, "atr.size": 6}[field]
        spec = {op: rnd.choice([rnd.randint(-6, hi), round(rnd.uniform(-6, hi), 2)]) for op in ops}
        return {"range": {field: spec}}
    if kind == "exists":
        return {
            "exists": {
                "field": rnd.choice(
                    ["regex.extractions.logLevel", "request.method", "tags", "atr", "response.status_code"]
                )
            }
        }
    if kind == "match" and rnd.random() < 0.4:
        field, value = rnd.choice([
            ("regex.extractions.logLevel", rnd.choice(["error", "ERROR", "Info", "warn"])), ("request.method", rnd.choice(["get", "Post"])),
            ("atr.domain_name", rnd.choice(["Payments", "pay", "orders search"])), ("error.code", rnd.choice(["e-a", "E-B"])),
            ("response.status_code", rnd.choice([500, "404"])), ("request.method.keyword", "get"),
        ])  # fmt: skip
        return {rnd.choice(["match", "match_phrase"]): {field: value}}
    if kind == "match":
        return {
            "match": {
                rnd.choice(["message", "error.message"]): {
                    "query": " ".join(rnd.sample(WORDS, k=2)).upper(),
                    "operator": rnd.choice(["or", "and"]),
                }
            }
        }
    if kind == "match_phrase":
        return {"match_phrase": {rnd.choice(["message", "error.message"]): " ".join(rnd.sample(WORDS, k=2))}}
    clauses = {
        k: [random_filter(rnd, depth + 1) for _ in range(rnd.randint(0, 2))]
        for k in ("must", "should", "must_not")
    }
    return {"bool": {k: v for k, v in clauses.items() if v}}


@pytest.fixture(scope="module", params=ENGINES)
def index(request: pytest.FixtureRequest) -> SearchIndex:
    ix = open_index(engine=request.param)
    ix.add(DOCS[: N_DOCS // 2])
    ix.add(DOCS[N_DOCS // 2 :])  # two commits: more than one segment
    return ix


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    return request.param  # type: ignore[no-any-return]


def test_random_filters_match_brute_force(index: SearchIndex) -> None:
    rnd = random.Random(7)
    for _ in range(150):
        filters = [random_filter(rnd) for _ in range(rnd.randint(1, 2))]
        expected = sum(all(brute(d, f) for f in filters) for d in DOCS)
        assert index.count(filters) == expected, filters


def test_window_and_routing(index: SearchIndex) -> None:
    start, end = DOCS[0]["_source"]["@timestamp"], DOCS[1]["_source"]["@timestamp"]
    start, end = min(start, end), max(start, end)
    q = DocQuery(
        start=start,
        end=end,
        routing={"atr.domain_name": ["payments", "orders"], "regex.extractions.logLevel": ["*"]},
    )
    expected = sum(
        parse_iso_ms(start) <= ts_of(d) <= parse_iso_ms(end)
        and any(v in ("payments", "orders") for v in values(d, "atr.domain_name"))
        for d in DOCS
    )
    assert index.count(q) == expected
    assert index.count(DocQuery(routing={"atr.domain_name": []})) == 0


def test_date_math_with_now(index: SearchIndex) -> None:
    now = datetime(2026, 11, 25, 13, 45, tzinfo=UTC)
    q = DocQuery(filters=[{"range": {"@timestamp": {"gte": "now-1d/d", "lt": "now/d"}}}], now=now)
    lo, hi = parse_iso_ms("2026-11-24T00:00:00Z"), parse_iso_ms("2026-11-25T00:00:00Z")
    assert index.count(q) == sum(lo <= ts_of(d) < hi for d in DOCS)
    q = DocQuery(filters=[{"range": {"@timestamp": {"gt": "now-2h/h", "lte": "now/h"}}}], now=now)
    lo, hi = parse_iso_ms("2026-11-25T12:00:00Z"), parse_iso_ms("2026-11-25T14:00:00Z")
    assert index.count(q) == sum(lo <= ts_of(d) < hi for d in DOCS)


def test_terms_exact_with_other_count(index: SearchIndex) -> None:
    res = index.aggregate(
        None, {"lv": {"terms": {"field": "regex.extractions.logLevel.keyword", "size": 2}}}
    )["lv"]
    counts = Counter(v for d in DOCS for v in set(values(d, "regex.extractions.logLevel")))
    top = counts.most_common()
    assert [(b["key"], b["doc_count"]) for b in res["buckets"]] == top[:2]
    assert res["sum_other_doc_count"] == sum(c for _, c in top[2:])
    assert res["doc_count_error_upper_bound"] == 0


def test_date_histogram_and_emulated_subaggs(index: SearchIndex) -> None:
    aggs = {
        "h": {
            "date_histogram": {"field": "@timestamp", "fixed_interval": "6h"},
            "aggs": {
                "err": {"filter": {"term": {"regex.extractions.logLevel": "ERROR"}}},
                "nolvl": {"missing": {"field": "regex.extractions.logLevel"}},
            },
        },
        "day": {"date_histogram": {"field": "@timestamp", "calendar_interval": "1d", "min_doc_count": 1}},
        "month": {"date_histogram": {"field": "@timestamp", "calendar_interval": "month"}},
        "miss": {"missing": {"field": "atr.domain_name"}},
    }
    res = index.aggregate(None, aggs)
    buckets = res["h"]["buckets"]
    assert sum(b["doc_count"] for b in buckets) == N_DOCS
    for b in buckets:
        inside = [d for d in DOCS if b["key"] <= ts_of(d) < b["key"] + 6 * 3_600_000]
        assert b["key_as_string"] == iso_ms(b["key"])
        assert b["doc_count"] == len(inside)
        assert b["err"]["doc_count"] == sum(
            "ERROR" in values(d, "regex.extractions.logLevel") for d in inside
        )
        assert b["nolvl"]["doc_count"] == sum(not values(d, "regex.extractions.logLevel") for d in inside)
    assert [b["key_as_string"][:10] for b in res["day"]["buckets"]] == [
        "2026-11-24",
        "2026-11-25",
        "2026-11-26",
    ]
    assert res["month"]["buckets"][0]["key_as_string"] == "2026-11-01T00:00:00.000Z"
    assert res["month"]["buckets"][0]["doc_count"] == N_DOCS
    assert res["miss"]["doc_count"] == sum(not values(d, "atr.domain_name") for d in DOCS)


def test_filters_range_and_metrics(index: SearchIndex) -> None:
    filters = [{"term": {"regex.extractions.logLevel": "ERROR"}}]
    aggs = {
        "f": {"filters": {"filters": {"get": {"match": {"request.method": "get"}}}, "other_bucket": True}},
        "r": {"range": {"field": "response.duration_ms", "ranges": [{"to": 50}, {"from": 50, "to": 75.5}]}},
        "s": {"stats": {"field": "atr.size"}},
        "c": {"cardinality": {"field": "atr.domain_name"}},
        "top": {
            "top_hits": {"size": 2, "sort": [{"@timestamp": {"order": "desc"}}], "_source": ["@timestamp"]}
        },
    }
    res = index.aggregate(filters, aggs)
    docs = [d for d in DOCS if brute(d, filters[0])]
    get = sum(
        any(isinstance(v, str) and v.lower() == "get" for v in values(d, "request.method")) for d in docs
    )
    assert res["f"]["buckets"]["get"]["doc_count"] == get
    assert res["f"]["buckets"]["_other_"]["doc_count"] == len(docs) - get
    durs = [v for d in docs for v in values(d, "response.duration_ms")]
    assert [b["doc_count"] for b in res["r"]["buckets"]] == [
        sum(v < 50 for v in durs),
        sum(50 <= v < 75.5 for v in durs),
    ]
    sizes = [v for d in docs for v in values(d, "atr.size")]
    assert res["s"]["count"] == len(sizes)
    assert res["s"]["min"] == min(sizes)
    assert res["c"]["value"] == len({v for d in docs for v in values(d, "atr.domain_name")})
    latest = sorted(docs, key=lambda d: (ts_of(d), d["_id"]), reverse=True)[:2]
    assert [h["_id"] for h in res["top"]["hits"]["hits"]] == [d["_id"] for d in latest]
    assert res["top"]["hits"]["total"]["value"] == len(docs)


# Integers next to decimals, and a commit whose documents lack the field: what a real export holds
# (a duration logged as 75 by one service and 60.5 by another). Each split is a different segment
# layout; tantivy's native range aggregation miscounted all of them.
_MIXED = [75, 60, 20.5, 60.5, 80, 3.25, 50, None, 75.5, None]
_MIXED_SPLITS = {"one-commit": [10], "ints-alone": [2, 8], "missing-alone": [7, 3], "one-each": [1] * 10}


@pytest.mark.parametrize("split", list(_MIXED_SPLITS))
def test_range_counts_integers_and_decimals_in_any_segment_layout(engine: Engine, split: str) -> None:
    docs = []
    for i, value in enumerate(_MIXED):
        src: dict[str, Any] = {"@timestamp": iso_ms(BASE_MS + i), "level": "ERROR" if i % 2 else "INFO"}
        if value is not None:
            src["v"] = value
        docs.append({"_index": "logs-0", "_id": f"m{i}", "_source": src})
    ix = open_index(engine=engine)
    start = 0
    for size in _MIXED_SPLITS[split]:
        ix.add(docs[start : start + size])
        start += size
    ranges = [{"to": 50}, {"from": 50, "to": 75.5}, {"from": 75.5}, {"from": 60, "to": 60.5}]
    res = ix.aggregate(
        None, {"r": {"range": {"field": "v", "ranges": ranges}, "aggs": {"l": {"terms": {"field": "level"}}}}}
    )
    present = [(v, i) for i, v in enumerate(_MIXED) if v is not None]

    def inside(value: float, bounds: dict[str, float]) -> bool:
        return bounds.get("from", float("-inf")) <= value < bounds.get("to", float("inf"))

    want = [[i for v, i in present if inside(v, bounds)] for bounds in ranges]
    assert [b["doc_count"] for b in res["r"]["buckets"]] == [len(ids) for ids in want]
    assert [b["key"] for b in res["r"]["buckets"]] == ["*-50.0", "50.0-75.5", "75.5-*", "60.0-60.5"]
    for bucket, ids in zip(res["r"]["buckets"], want, strict=True):
        levels = Counter("ERROR" if i % 2 else "INFO" for i in ids)
        assert {t["key"]: t["doc_count"] for t in bucket["l"]["buckets"]} == dict(levels)
    # overlapping ranges on the timestamp (tantivy's native aggregation refused them)
    stamps = [{"to": iso_ms(BASE_MS + 5)}, {"from": iso_ms(BASE_MS + 3), "to": iso_ms(BASE_MS + 8)}]
    res = ix.aggregate(None, {"t": {"range": {"field": "@timestamp", "ranges": stamps}}})
    assert [b["doc_count"] for b in res["t"]["buckets"]] == [5, 5]
    assert res["t"]["buckets"][1]["from_as_string"] == iso_ms(BASE_MS + 3)


def test_an_aggregation_the_engine_refuses_is_a_domain_error(index: SearchIndex) -> None:
    """A histogram of ~10^9 buckets: DuckDB refuses it before running, tantivy when it hits its
    memory limit; either way a DSLError (a CMError the tool reports), never a raw ValueError."""
    with pytest.raises(DSLError) as refused:
        index.aggregate(None, {"h": {"histogram": {"field": "response.duration_ms", "interval": 1e-7}}})
    assert refused.value.path.startswith("aggs")


def _paginate(index: SearchIndex, filters: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        page, cursor = index.search(filters, size, after=cursor)
        out.extend(page)
        if cursor is None:
            return out


def test_pagination_stable_and_complete(index: SearchIndex) -> None:
    filters = [{"exists": {"field": "response.status_code"}}]
    expected = sorted((d for d in DOCS if brute(d, filters[0])), key=lambda d: (ts_of(d), d["_id"]))
    got = _paginate(index, filters, 97)
    assert [h["_id"] for h in got] == [d["_id"] for d in expected]
    assert got[0] == expected[0]  # the stored hit comes back exactly as added


def test_fields_projection(index: SearchIndex) -> None:
    page, _ = index.search(
        [{"exists": {"field": "request.method"}}], 20, fields=["request.method", "@timestamp"]
    )
    for h in page:
        src = h["_source"]
        assert set(src) <= {"request", "request.method", "@timestamp"}
        assert "@timestamp" in src


def test_reopen_persisted(tmp_path: Path, engine: Engine) -> None:
    path = tmp_path / "idx"
    with open_index(path, engine=engine) as ix:
        ix.add(DOCS[:600])
        before = _paginate(ix, [], 50)
        _page, cursor = ix.search([], 50)
    reopened = open_index(path, engine=engine)
    assert len(reopened) == 600
    assert _paginate(reopened, [], 50) == before
    nxt, _ = reopened.search([], 50, after=cursor)
    assert nxt == before[50:100]
    # An index built by another engine version (other schema / text fields) is refused, not misread.
    marker = path / ("cm-dsl-schema.json" if engine == "tantivy" else "cm-duck-manifest.json")
    marker.write_text('{"version": 0}')
    with pytest.raises(DSLError, match="another version of the engine"):
        open_index(path, engine=engine)
    # and so is an index of the other engine
    other = tmp_path / "other"
    open_index(other, engine="tantivy" if engine == "duckdb" else "duckdb").add(DOCS[:3])
    with pytest.raises(DSLError, match="another"):
        open_index(other, engine=engine)


def test_dsl_errors_name_the_path(index: SearchIndex) -> None:
    with pytest.raises(
        DSLError, match=r"filters\[1\]\.wildcard: unsupported query type; supported: term, terms"
    ):
        index.count([{"term": {"a": "b"}}, {"wildcard": {"a": "b*"}}])
    with pytest.raises(DSLError, match=r"filters\[0\]\.bool\.must\[0\]\.regexp"):
        index.count([{"bool": {"must": [{"regexp": {"a": "b"}}]}}])
    with pytest.raises(
        DSLError, match=r"aggs\.x\.aggs\.y\.geohash_grid: unsupported aggregation type; supported: terms"
    ):
        index.aggregate(
            None, {"x": {"terms": {"field": "a"}, "aggs": {"y": {"geohash_grid": {"field": "g"}}}}}
        )
    with pytest.raises(DSLError, match=r"filters\[0\]\.range\.@timestamp\.gte"):
        index.count([{"range": {"@timestamp": {"gte": "yesterday"}}}])
    with pytest.raises(DSLError, match="after"):
        index.search(None, 10, after="not-a-cursor")


def test_match_on_keyword_fields_is_case_insensitive_exact(index: SearchIndex) -> None:
    def n_ci(field: str, value: str) -> int:
        return sum(
            any(isinstance(v, str) and v.lower() == value.lower() for v in values(d, field)) for d in DOCS
        )

    level = "regex.extractions.logLevel"
    assert index.count([{"match": {level: "Info"}}]) == n_ci(level, "info") > 0
    assert index.count([{"match": {level: "info"}}]) > index.count([{"term": {level: "info"}}])
    assert index.count([{"match_phrase": {"request.method": "GET"}}]) == n_ci("request.method", "get") > 0
    assert index.count([{"match": {"atr.domain_name": "pay"}}]) == 0  # whole value, not a token or prefix
    assert index.count([{"match": {"atr.domain_name": {"query": "PAYMENTS", "operator": "and"}}}]) == n_ci(
        "atr.domain_name", "payments"
    )
    # .keyword, _id and _index stay exact and case-sensitive.
    exact_get = sum("get" in values(d, "request.method") for d in DOCS)
    assert index.count([{"match": {"request.method.keyword": "get"}}]) == exact_get
    assert index.count([{"match": {"_id": "D00001"}}]) == 0
    assert index.count([{"match": {"_id": "d00001"}}]) == 1
    # Text fields are tokenized: one word of error.message matches.
    tokens = sum("timeout" in tokenize(" ".join(values(d, "error.message"))) for d in DOCS)
    assert index.count([{"match": {"error.message": "TIMEOUT"}}]) == tokens > 0


def test_odd_hits_are_normalised_for_the_index_only(engine: Engine) -> None:
    hits: list[dict[str, Any]] = [
        {
            "_index": "a",
            "_id": 7,
            "_score": 1.5,
            "sort": [1],
            "_source": {"@timestamp": "2026-11-24T00:00:00Z"},
        },
        {"_index": "a", "_id": "n", "_source": None},
        {
            "_id": "x",
            "_source": {"message": "Hello World", "@ts": "not mine"},
            "@ts": 5,
            "@tx": {"message": "z"},
        },
        {
            "_index": "b",
            "_id": "m",
            "_source": {"message": ["one two", "three"], "error.message": "Disk Full"},
        },
    ]
    ix = open_index(engine=engine)
    ix.add(hits)
    page, _ = ix.search(None, 10)
    assert sorted(page, key=lambda h: str(h["_id"])) == sorted(hits, key=lambda h: str(h["_id"]))
    assert ix.count([{"term": {"_id": "7"}}]) == 1
    assert ix.count([{"term": {"_index": ""}}]) == 1
    assert ix.count([{"match": {"message": "world"}}]) == 1
    assert ix.count([{"match": {"message": "z"}}]) == 0  # the hit's own "@tx" key is not the index's
    assert ix.count([{"match_phrase": {"message": "one two"}}]) == 1
    assert ix.count([{"match": {"error.message": "disk"}}]) == 1
    assert ix.count([{"range": {"@timestamp": {"gte": "2026-11-24T00:00:00Z"}}}]) == 1


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-24T10:11:12.345Z",
        "2026-11-24T23:59:59.999Z",
        "2024-02-29T00:00:00.000Z",
        "2026-02-30T00:00:00.000Z",
        "2026-11-24T24:00:00.000Z",
        "2026-11-24T10:60:00.000Z",
        "2026-11-24T10:11:12.3a5Z",
        "2026-11-24T10:11:12.345+01:00",
        "2026-11-24T10:11:12Z",
        "2026-11-24",
        "not a date",
    ],
)
def test_timestamp_fast_path_agrees_with_parser(text: str) -> None:
    try:
        expected = parse_iso_ms(text)
    except ValueError:
        expected = MISSING_TS
    assert _timestamp_ms({"@timestamp": text}) == expected


def test_add_lines_from_stored_text_answers_like_add(index: SearchIndex) -> None:
    """Documents indexed from their JSON text (as a build from files does) give the same answers as
    the same documents indexed from dicts: same pages, counts and aggregations, hits as stored."""
    import json

    spacing = [(", ", ": "), (",", ":")]
    lines = [
        (json.dumps(doc, separators=spacing[i % 2], ensure_ascii=i % 3 == 0).encode(), doc)
        for i, doc in enumerate(DOCS)
    ]
    # Not taken by the fast path: a hit whose text is not an object, and one with a non-string _id.
    odd = {"_index": "o", "_id": 5, "_source": {"message": "odd one"}}
    lines.append((b"  \n", odd))
    ix = open_index(engine=index.engine)  # type: ignore[attr-defined]
    assert ix.add_lines(lines[: N_DOCS // 2]) == N_DOCS // 2
    assert ix.add_lines(lines[N_DOCS // 2 :]) == N_DOCS - N_DOCS // 2 + 1
    assert ix.count([{"term": {"_id": "5"}}]) == 1
    not_odd = [{"bool": {"must_not": [{"term": {"_index": "o"}}]}}]
    rnd = random.Random(11)
    for _ in range(60):
        filters = [random_filter(rnd)]
        assert ix.count([*filters, *not_odd]) == index.count(filters), filters
    full, _ = ix.search(not_odd, N_DOCS)
    expected, _ = index.search(None, N_DOCS)
    assert full == expected
    aggs = {
        "levels": {"terms": {"field": "regex.extractions.logLevel"}},
        "codes": {"histogram": {"field": "response.status_code", "interval": 100}},
        "hours": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h"}},
    }
    assert ix.aggregate(not_odd, aggs) == index.aggregate(None, aggs)
