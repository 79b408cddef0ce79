"""Context discipline: every tool result capped, older results shrunk as a request nears the window.

Shrinking keeps a result's first lines (our tools put the totals there) and where the data lives: a
result with a `result_id` is in the local store, so `results_search` / `results_aggs` read it again at
no quota; nothing is lost, only taken out of the prompt. The transcript keeps every full text.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from cm_mcp.agent.conversation import Message, ToolResult, ToolResultsMessage
from cm_mcp.agent.providers.base import ModelRequest

# The estimate cm-mcp's own results are budgeted with: BPE pieces, erring high (JSON, timestamps and
# counts run at 2-3 characters per token, which characters / 4 counted up to 2x low). Importing it
# costs the agent ~30 ms of a start-up of ~3 s (python -X importtime).
from cm_mcp.summarize.budget import estimate_tokens

#: Shrink older results once a request passes this share of the context window...
SHRINK_AT = 0.6
#: ...and all but the newest one past this share.
SHRINK_HARD_AT = 0.85
#: Results kept whole on the first pass: the model is usually working on them.
KEEP_NEWEST = 2
_HEAD_LINES = 3
_HEAD_LINE_CHARS = 240


def request_tokens(request: ModelRequest) -> int:
    """Estimated prompt size of `request` (system, tools and messages as JSON)."""
    tools = [asdict(tool) for tool in request.tools]
    messages = [message.model_dump() for message in request.messages]
    return estimate_tokens(request.system + request.context + json.dumps(tools) + json.dumps(messages))


def cap_text(text: str, max_tokens: int) -> str:
    total = estimate_tokens(text)
    if total <= max_tokens:
        return text
    # the estimate grows with the text about linearly: keep the same share of the characters
    limit = len(text) * max_tokens // total
    cut = text.rfind("\n", 0, limit)
    kept = text[: cut if cut > limit * 0.8 else limit]
    return (
        f"{kept}\n[cut: {len(text) - len(kept):,} more characters of this result not shown (limit "
        f"{max_tokens:,} tokens); ask for less: a narrower window, filters or a smaller size]"
    )


def short_form(result: ToolResult) -> str:
    head = [
        line if len(line) <= _HEAD_LINE_CHARS else line[:_HEAD_LINE_CHARS] + "…"
        for line in result.text.splitlines()[:_HEAD_LINES]
    ]
    if result.result_id:
        where = (
            f"The data is stored locally as result {result.result_id}: results_search or results_aggs "
            f'with {{"result_id": "{result.result_id}"}} read it again at no quota.'
        )
    else:
        where = "Repeat the call if you need the full text again."
    label = f"#{result.step} " if result.step is not None else ""
    return f"[{label}{result.name} result shrunk to save context]\n" + "\n".join(head) + f"\n{where}"


def shrink(messages: list[Message], *, keep_newest: int) -> list[int | None]:
    """Replace all but the `keep_newest` newest tool results by their short form (in place); returns
    the evidence numbers of the results shrunk now."""
    results = [r for m in messages if isinstance(m, ToolResultsMessage) for r in m.results]
    older = results[: max(0, len(results) - keep_newest)]
    shrunk: list[int | None] = []
    for result in older:
        if result.shrunk or estimate_tokens(result.text) < 150:  # small results stay as they are
            continue
        result.text = short_form(result)
        result.shrunk = True
        shrunk.append(result.step)
    return shrunk


def fit(request: ModelRequest, context_tokens: int) -> list[int | None]:
    """Shrink older results of `request.messages` until the request is well inside the window."""
    shrunk: list[int | None] = []
    if request_tokens(request) > context_tokens * SHRINK_AT:
        shrunk += shrink(request.messages, keep_newest=KEEP_NEWEST)
    if request_tokens(request) > context_tokens * SHRINK_HARD_AT:
        shrunk += shrink(request.messages, keep_newest=1)
    return shrunk
