"""Template mining on small inline log sets: what merges, what splits, what masking keeps.

Every set here is written for this file (generic service logs, not copied from Loghub) and runs on a
fresh clone; the Loghub accuracy test is the extra. Each test names the behaviour it pins: switching
off the rule behind it (post-merge, a mask, the one-word rule, ...) fails it without ../shared.
"""

from __future__ import annotations

import gc
import random
from collections import Counter
from typing import Any

import pytest

from cm_mcp.summarize import summarize_logs
from cm_mcp.summarize import templates as miner
from cm_mcp.summarize.masking import mask_message
from cm_mcp.summarize.templates import group_messages

RNG_SEED = 11


def _ip(rng: random.Random) -> str:
    return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _by_template(messages: list[str]) -> dict[str, int]:
    groups = group_messages(messages)
    return dict(zip(groups.templates, groups.counts, strict=True))


def _partition(messages: list[str]) -> list[set[int]]:
    """The groups as sets of message indexes (for comparing groupings, whatever their texts)."""
    groups = group_messages(messages)
    members: dict[int, set[int]] = {}
    for index, template in enumerate(groups.assignments):
        members.setdefault(template, set()).add(index)
    return sorted(members.values(), key=min)


# --- masking -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "masked"),
    [
        ("upstream connect error to 10.0.3.7:8443 after 45ms", "upstream connect error to <IP> after <DUR>"),
        ("took 1.5 s, sent 9.2 KB (9420 bytes)", "took <DUR>, sent <SIZE>"),
        ("at 2024-05-01T10:00:00.123Z and 12:34:56", "at <TS> and <TS>"),
        ("on Sun Jul  3 10:05:25 2005", "on <TS> <NUM>"),
        ("id 3f2a1b4c-1234-5678-9abc-def012345678 flags=0x1f", "id <UUID> flags=<HEX>"),
        ("reading /var/lib/app/data.db from https://example.org/x?y=1", "reading <PATH> from <URL>"),
        ("mail to ops@example.org from web-01.prod.example.org", "mail to <EMAIL> from <NAME>"),
        # keys, brackets and separators stay; only the values go
        ("rhost=198.51.100.7 user=root", "rhost=<IP> user=root"),
        ("x[0]=317.0, ws=WorkSource{10113}", "x[<NUM>]=<NUM>, ws=WorkSource{<NUM>}"),
        # a quoted request line is three tokens, not one swallowed string
        ('"GET /api/v1/orders/17 HTTP/1.1" 200', '"GET <*>" <NUM>'),
        # a value among delimiters is masked on its own, whatever its shape
        ("task=build-17 done", "task=<*> done"),
        # words are never masked by shape alone: whether they vary is decided from the data
        ("VM Stopped by admin", "VM Stopped by admin"),
    ],
)
def test_masking_replaces_values_and_keeps_structure(message: str, masked: str) -> None:
    assert mask_message(message) == masked


# --- merging -------------------------------------------------------------------------------------


def test_values_of_every_kind_merge_into_one_template() -> None:
    rng = random.Random(RNG_SEED)
    messages = [
        f"request {rng.getrandbits(64):016x} from {_ip(rng)}:{rng.randint(1024, 65535)} done in "
        f"{rng.randint(1, 900)}ms, {rng.randint(1, 99)}.{rng.randint(0, 9)} KB at "
        f"2024-05-0{rng.randint(1, 9)}T{rng.randint(10, 23)}:00:00Z"
        for _ in range(200)
    ]
    assert _by_template(messages) == {"request <*> from <IP> done in <DUR>, <SIZE> at <TS>": 200}


def test_a_word_that_takes_many_values_is_a_variable() -> None:
    users = ["alice", "bob", "carol", "dave", "erin", "frank"]
    messages = [f"session opened for user {user} by uid=0" for user in users for _ in range(5)]
    assert _by_template(messages) == {"session opened for user <*> by uid=<NUM>": 30}


def test_a_few_words_each_seen_once_are_a_variable() -> None:
    messages = ["user alice logged in", "user bob logged in", "user carol logged in"]
    assert _by_template(messages) == {"user <*> logged in": 3}


def test_a_value_column_keeps_the_key_its_values_share() -> None:
    # "job=<*>", not "<*>": the key says what the value is, and tells this event from "owner=<*> ..."
    jobs = ["alpha", "bravo", "charlie", "delta", "echo"]
    messages = [f"job={job} started (queue {job})," for job in jobs]
    assert _by_template(messages) == {"job=<*> started (queue <*>),": 5}


def test_a_leading_variable_word_does_not_decide_the_template() -> None:
    hosts = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    messages = [f"{host} heartbeat missed for {n} seconds" for n in range(4) for host in hosts]
    assert _by_template(messages) == {"<*> heartbeat missed for <DUR>": 24}


def test_lists_of_any_length_are_one_value() -> None:
    rng = random.Random(RNG_SEED)
    messages = [
        "replicas " + ", ".join(_ip(rng) for _ in range(size)) + " in sync" for size in (1, 2, 3, 5, 8)
    ]
    messages += ["nodes " + " ".join(f"node-{i} ok" for i in range(size)) + " checked" for size in (2, 3, 6)]
    assert _partition(messages) == [set(range(5)), set(range(5, 8))]


def test_optional_bracketed_values_do_not_split_an_event() -> None:
    messages = [
        "conn 7 close, 403 bytes sent, 1190 bytes (1.16 KB) received",
        "conn 8 close, 2048 bytes (2.00 KB) sent, 5 bytes received",
        "conn 9 close, 0 bytes sent, 0 bytes received",
        "conn 10 close, 12 bytes () sent, 7 bytes received",
    ]
    assert _by_template(messages) == {"conn <NUM> close, <SIZE> sent, <SIZE> received": 4}


def test_multi_token_values_of_different_lengths_merge() -> None:
    frames = [f"com.example.svc.Handler{i}.run:{10 + i}" for i in range(9)]
    messages = [f"slow call traced through {' '.join(frames[:size])} (total)" for size in range(2, 9)]
    assert _by_template(messages) == {"slow call traced through <NAME> (total)": 7}


def test_a_word_in_a_value_slot_is_a_value() -> None:
    messages = [f"connect to 10.0.0.{n} failed" for n in range(1, 6)] + ["connect to localhost failed"]
    assert _by_template(messages) == {"connect to <*> failed": 6}


def test_keys_with_different_value_types_merge() -> None:
    # "<IP>" in one key, a host name in another: one value slot, whatever fills it
    messages = [
        "connect to 10.0.0.1 failed",
        "connect to db-primary.internal.example.org failed",
        "connect to 10.0.0.9 failed",
    ]
    assert len(_by_template(messages)) == 1


# --- splitting ---------------------------------------------------------------------------------


def test_one_word_difference_is_two_events() -> None:
    rng = random.Random(RNG_SEED)
    messages = [f"VM {rng.randint(1, 999)} Stopped by scheduler" for _ in range(20)]
    messages += [f"VM {rng.randint(1, 999)} Started by scheduler" for _ in range(20)]
    messages += ["VM 5 Started by operator", "VM 6 Stopped by operator"]  # "by <*>" stays a choice too
    templates = _by_template(messages)
    assert templates == {
        "VM <NUM> Stopped by scheduler": 20,
        "VM <NUM> Started by scheduler": 20,
        "VM <NUM> Started by operator": 1,
        "VM <NUM> Stopped by operator": 1,
    }


def test_http_methods_are_part_of_the_event() -> None:
    rng = random.Random(RNG_SEED)
    messages = [
        f'"{method} /api/v1/orders/{rng.randint(1, 10**6)} HTTP/1.1" {rng.choice([200, 201, 500])}'
        for method in ("GET", "POST", "DELETE")
        for _ in range(10)
    ]
    templates = _by_template(messages)
    assert sorted(templates.items()) == [
        ('"DELETE <*>" <NUM>', 10),
        ('"GET <*>" <NUM>', 10),
        ('"POST <*>" <NUM>', 10),
    ]


def test_a_few_repeated_words_in_one_slot_are_events() -> None:
    # three commands, each seen many times: a closed set, not a value
    messages = [f"{command} (command {n})" for command in ("boot", "halt", "wait") for n in range(6)]
    assert len(_by_template(messages)) == 3


def test_booleans_split() -> None:
    messages = [f"key {n} down {flag} canceled false" for flag in ("true", "false") for n in range(3)]
    assert _by_template(messages) == {
        "key <NUM> down true canceled false": 3,
        "key <NUM> down false canceled false": 3,
    }


def test_different_keys_in_one_position_are_different_events() -> None:
    messages = [f"getDataEnabled: subId={n} phoneId={n}" for n in range(4)]
    messages += [f"getDataEnabled: subId={n} retVal=true" for n in range(4)]
    assert _by_template(messages) == {
        "getDataEnabled: subId=<NUM> phoneId=<NUM>": 4,
        "getDataEnabled: subId=<NUM> retVal=true": 4,
    }


def test_events_made_mostly_of_values_are_not_merged_by_their_values() -> None:
    # twelve events of the same length whose only words differ: positions where both messages hold a
    # value say nothing about whether they are one event
    rng = random.Random(RNG_SEED)
    verbs = ["parsed", "loaded", "cached", "evicted", "sent", "acked", "queued", "dropped"]
    objects = ["header", "body", "trailer", "index", "chunk", "frame", "record", "page"]
    events = list(zip(verbs, objects, strict=True)) + list(zip(verbs[:4], objects[4:], strict=True))
    messages = [
        f"{_ip(rng)} {rng.randint(1, 9)} {rng.randint(1, 9)}ms {verb} {thing}"
        for verb, thing in events
        for _ in range(3)
    ]
    assert len(_by_template(messages)) == len(events)


def test_a_shared_word_among_values_does_not_make_one_event() -> None:
    # twelve events sharing one word, each with its own verb and object, and three values: agreeing
    # values must not count as agreement, or the one shared word would pull them all together
    rng = random.Random(RNG_SEED)
    verbs = ["parsed", "loaded", "cached", "evicted", "sent", "acked", "queued", "dropped", "read", "wrote"]
    verbs += ["locked", "freed"]
    objects = ["header", "body", "trailer", "index", "chunk", "frame", "record", "page", "row", "blob"]
    objects += ["lease", "slot"]
    messages = [
        f"{_ip(rng)} {rng.randint(1, 9)} {rng.randint(1, 9)}ms worker {verb} {thing}"
        for verb, thing in zip(verbs, objects, strict=True)
        for _ in range(3)
    ]
    assert len(_by_template(messages)) == len(verbs)


# --- the merge of templates (post-merge) -------------------------------------------------------


def test_templates_equal_once_values_are_generic_are_merged() -> None:
    # a payload that is a number in some messages and free words in others: the words become a value
    # only once their cluster is judged, so two templates of different lengths meet in the post-merge
    messages = [f"send {n} to 10.0.0.{n}" for n in range(1, 4)]
    messages += [f"send {a} {b} to 10.0.1.1" for a, b in [("hi", "there"), ("good", "bye"), ("so", "long")]]
    messages += ["send see you to 10.0.1.2"]
    assert _by_template(messages) == {"send <*> to <IP>": 7}
    assert len(group_messages(messages, post_merge=False).templates) == 2


# --- bounded memory --------------------------------------------------------------------------------


def _service_logs(n: int, seed: int = RNG_SEED) -> list[str]:
    rng = random.Random(seed)
    users = [f"user{chr(97 + i)}{chr(97 + j)}" for i in range(20) for j in range(20)]
    makers = [
        lambda: f"GET /api/items/{rng.randint(1, 99)} from {_ip(rng)} in {rng.randint(1, 99)}ms",
        lambda: f"login ok for {rng.choice(users).replace('user', 'u')} from {_ip(rng)}",
        lambda: f"job {rng.randint(1, 500)} finished with status {rng.choice(['done', 'failed'])}",
        lambda: f"cache {rng.choice(['hit', 'miss'])} ratio {rng.random():.2f}",
    ]
    return [rng.choice(makers)() for _ in range(n)]


def test_compaction_keeps_the_grouping(monkeypatch: pytest.MonkeyPatch) -> None:
    messages = _service_logs(3000)
    expected = _by_template(messages)
    assert len({mask_message(m) for m in messages}) > 300  # many distinct keys: compaction happens
    partition = _partition(messages)
    monkeypatch.setattr(miner, "KEY_LIMIT", 40)
    assert _by_template(messages) == expected
    assert _partition(messages) == partition  # every message still maps to its template


def test_a_key_arriving_at_compaction_that_equals_a_template_keeps_its_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # with room for two keys, the third compacts them into the all-values key "<*>", which is what
    # the third message's key is: it must count into that template, not replace it
    monkeypatch.setattr(miner, "KEY_LIMIT", 2)
    groups = group_messages(["alpha", "beta", "node-12", "gamma"])
    assert sum(groups.counts) == 4
    assert Counter(groups.assignments) == dict(enumerate(groups.counts))


@pytest.mark.parametrize("enabled", [True, False])
def test_mining_pauses_the_cyclic_gc_and_leaves_it_as_it_was(
    monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    seen: list[bool] = []
    split = miner._split

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return split(*args, **kwargs)

    monkeypatch.setattr(miner, "_split", spy)
    monkeypatch.setattr(miner, "KEY_LIMIT", 40)  # compactions as well as the final mining
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        groups = group_messages(_service_logs(500))
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()
    assert sum(groups.counts) == 500
    assert seen and not any(seen)


def test_compaction_keeps_summary_statistics(monkeypatch: pytest.MonkeyPatch) -> None:
    messages = _service_logs(2000, seed=3)
    hits: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        # three timestamp spellings: the usual one, another length, epoch milliseconds
        minute, second = divmod(i % 3600, 60)
        stamp: Any = f"2024-05-01T10:{minute:02d}:{second:02d}.000Z"
        if i % 7 == 0:
            stamp = f"2024-05-01T10:{minute:02d}:{second:02d}Z"
        if i % 11 == 0:
            stamp = 1714557600000 + i * 1000  # 2024-05-01T10:00:00Z + i seconds
        hits.append({"@timestamp": stamp, "message": message, "level": ["INFO", "ERROR"][i % 5 == 0]})
    plain = summarize_logs(hits, max_tokens=20_000)
    monkeypatch.setattr(miner, "KEY_LIMIT", 40)
    compacted = summarize_logs(hits, max_tokens=20_000)
    assert compacted.templates == plain.templates
    assert compacted.levels == plain.levels == dict(Counter(h["level"] for h in hits).most_common())
    assert plain.totals.first_timestamp == "1714557600000"
    assert plain.totals.last_timestamp == "2024-05-01T10:33:19.000Z"


@pytest.mark.parametrize(
    ("stamps", "first", "last"),
    [
        (
            [
                "2024-05-01T10:00:05.000Z",
                "2024-05-01T10:00:01Z",  # earliest, a shorter form
                1714557609000,  # 10:00:09Z as epoch milliseconds: latest
                "2024-05-01T12:00:03+02:00",  # 10:00:03Z with an offset
            ],
            "2024-05-01T10:00:01Z",
            "1714557609000",
        ),
        # as text "…05.500Z" sorts before "…05Z": only comparing like with like gets this right
        (
            ["2024-05-01T10:00:05Z", "2024-05-01T10:00:05.500Z"],
            "2024-05-01T10:00:05Z",
            "2024-05-01T10:00:05.500Z",
        ),
        # one form throughout: compared as text, no parsing needed
        (
            ["2024-05-01T10:00:07.000Z", "2024-05-01T09:59:59.999Z"],
            "2024-05-01T09:59:59.999Z",
            "2024-05-01T10:00:07.000Z",
        ),
    ],
)
def test_per_template_first_and_last_seen_across_timestamp_forms(
    stamps: list[Any], first: str, last: str
) -> None:
    hits = [{"@timestamp": s, "message": f"job {i} finished", "level": "INFO"} for i, s in enumerate(stamps)]
    summary = summarize_logs(hits)
    template = summary.templates[0]
    assert (template.first_seen, template.last_seen) == (first, last)
    assert (summary.totals.first_timestamp, summary.totals.last_timestamp) == (first, last)
