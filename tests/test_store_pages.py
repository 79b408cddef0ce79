"""Scroll pages answered before they are stored: the id comes at once, every read waits for the write."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from cm_mcp.dsl import ENGINES
from cm_mcp.dsl.engine import ENGINE_ENV
from cm_mcp.store import ResultNotFoundError, ResultStore, scroll
from tests.test_batch_fakes import make_hits


@pytest.fixture(autouse=True, params=ENGINES)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test on both engines (subprocesses too: they inherit the environment)."""
    monkeypatch.setenv(ENGINE_ENV, request.param)
    return str(request.param)


WAIT = 60.0  # generous: a loaded 2-core machine


@pytest.fixture
def held_writes(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Page writes that start only once the returned event is set (a slow disk, made explicit)."""
    go = threading.Event()
    write = scroll._PageWrite._write

    def slow_write(self: Any) -> None:
        assert go.wait(WAIT)
        write(self)

    monkeypatch.setattr(scroll._PageWrite, "_write", slow_write)
    return go


def in_thread(fn: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    return thread, out


def test_a_follow_up_waits_for_the_page_it_was_promised(tmp_path: Path, held_writes: threading.Event) -> None:
    store = ResultStore(tmp_path)
    result_id = store.keep_scroll_page(
        {"application": "atr"}, make_hits(40), kind="logs", next_scroll_id="s1"
    ).result_id
    assert not (tmp_path / "results" / result_id).exists()  # answered before it is stored
    more = store.keep_scroll_page({"scroll_id": "s1"}, make_hits(70), kind="logs").result_id
    assert more == result_id  # the continuation joins the result although page 1 is not on disk yet
    counting, counts = in_thread(lambda: store.count(result_id))
    listing, listed = in_thread(store.list)
    counting.join(0.5)
    assert counting.is_alive() and not counts  # waiting, not answering from nothing
    held_writes.set()
    counting.join(WAIT)
    listing.join(WAIT)
    assert counts == [70]  # both pages, de-duplicated (page 2 repeats page 1's 40 ids)
    info = store.get(result_id)
    assert (info.pages, info.records, info.records_received, info.complete) == (2, 70, 110, True)
    assert [r.id for r in listed[0]] == [result_id]


def test_a_failed_write_leaves_no_result_and_frees_the_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(scroll._PageWrite, "_write", broken)
    store = ResultStore(tmp_path)
    result_id = store.keep_scroll_page({"application": "atr"}, make_hits(5), kind="logs").result_id
    with pytest.raises(ResultNotFoundError):
        store.get(result_id)
    assert store.list() == []


PUBLISH_LATER = """
import sys
from pathlib import Path
from cm_mcp.store import ResultStore, scroll
from tests.test_batch_fakes import make_hits
go = __import__("threading").Event()
write = scroll._PageWrite._write
def slow(self):
    go.wait(120)
    write(self)
scroll._PageWrite._write = slow
store = ResultStore(Path(sys.argv[1]))
print(store.keep_scroll_page({"application": "atr"}, make_hits(12), kind="logs").result_id, flush=True)
sys.stdin.readline()
go.set()
"""


def test_another_process_waits_for_a_page_being_written(tmp_path: Path) -> None:
    """A reader in another process finds no result yet, sees its build lock held, and waits for it."""
    with subprocess.Popen(
        [sys.executable, "-c", PUBLISH_LATER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
    ) as writer:
        try:
            assert writer.stdout is not None and writer.stdin is not None
            result_id = writer.stdout.readline().decode().strip()
            store = ResultStore(tmp_path)
            counting, counts = in_thread(lambda: store.count(result_id))
            counting.join(0.5)
            assert counting.is_alive() and not counts
            writer.stdin.write(b"go\n")
            writer.stdin.flush()
            counting.join(WAIT)
            assert counts == [12]
            assert writer.wait(WAIT) == 0  # and it exited normally once the page was written
        finally:
            if writer.poll() is None:
                writer.kill()


def test_a_process_that_exits_right_after_answering_still_stores_its_page(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from cm_mcp.store import ResultStore;"
        "from tests.test_batch_fakes import make_hits;"
        "print(ResultStore(Path(sys.argv[1])).keep_scroll_page({'application': 'atr'}, make_hits(9), kind='logs').result_id)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        check=True,
        timeout=WAIT,
        cwd=Path(__file__).resolve().parents[1],
    )
    result_id = done.stdout.decode().strip()
    assert ResultStore(tmp_path).count(result_id) == 9


def test_a_page_kept_unstarted_is_written_only_when_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`start=False` (the scroll tool: answer first, then the write): readers wait for `write()`."""
    monkeypatch.setattr(scroll, "UNRELEASED_START_SECONDS", WAIT)
    store = ResultStore(tmp_path)
    kept = store.keep_scroll_page({"application": "atr"}, make_hits(25), kind="logs", start=False)
    counting, counts = in_thread(lambda: store.count(kept.result_id))
    counting.join(0.5)
    assert counting.is_alive() and not counts
    assert not (tmp_path / "results" / kept.result_id).exists()
    kept.write()
    kept.write()  # idempotent
    counting.join(WAIT)
    assert counts == [25]


def test_a_page_never_released_is_written_all_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scroll, "UNRELEASED_START_SECONDS", 0.05)
    store = ResultStore(tmp_path)
    kept = store.keep_scroll_page({"application": "atr"}, make_hits(6), kind="logs", start=False)
    assert store.count(kept.result_id) == 6  # a cancelled caller never released it
