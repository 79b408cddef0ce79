"""An incident report from a session's transcript, with every claim tied to the evidence behind it.

The model writes the answer (summary, timeline, scope, open questions) citing evidence numbers
(`[#3]`); the report checks those citations mechanically and adds what the model cannot be trusted
to write: for every cited step the exact call, its window, request_id and result_id, the call that
reads the stored data again at no quota and the call that reproduces it upstream. Then every number
of the answer is looked up in the tool results: found where cited, found only elsewhere, or found
nowhere (flagged). Built from the transcript alone: no model, no API request.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CITATION = re.compile(r"\[#(\d+)\]")
#: ISO timestamps, dates and clock times: looked up as text in the evidence
_MOMENT = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?|\b\d{1,2}:\d{2}(?::\d{2})?\b"
)
#: numbers: 901, 1,025, 21.0, 21.0% (not inside words such as ip-78148 or v2)
_NUMBER = re.compile(
    r"(?<![\w.#-])\d{1,3}(?:,\d{3})+(?:\.\d+)?%?(?![\w-])|(?<![\w.#,-])\d+(?:\.\d+)?%?(?![\w-])"
)
_LIST_MARKER = re.compile(r"^\s*\d+\.\s")
_EVIDENCE_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_EXCERPT_LINES = 12


@dataclass
class Step:
    """One call sent to a server, and what came back."""

    number: int
    tool: str
    server: str
    remote_name: str
    arguments: dict[str, Any]
    cost: str
    text: str = ""
    is_error: bool = False
    result_id: str | None = None
    request_id: str | None = None
    quota_remaining: int | None = None
    time_range: dict[str, Any] | None = None
    elapsed: float | None = None
    numbers: set[str] = field(default_factory=set)


@dataclass
class Question:
    number: int
    text: str
    answer: str | None = None
    status: str | None = None
    reason: str = ""
    steps: list[int] = field(default_factory=list)
    spent: dict[str, int] = field(default_factory=dict)


@dataclass
class Check:
    """One number or moment of the answer, and where the evidence has it."""

    value: str
    sentence: str
    cited: list[int]
    found_in: list[int]

    @property
    def verdict(self) -> str:
        if not self.found_in:
            return "in no tool result"
        if not self.cited:
            return f"uncited (found in {_refs(self.found_in)})"
        if set(self.cited) & set(self.found_in):
            return f"found in {_refs(sorted(set(self.cited) & set(self.found_in)))}"
        return f"cited {_refs(self.cited)} but found only in {_refs(self.found_in)}"

    @property
    def ok(self) -> bool:
        return bool(set(self.cited) & set(self.found_in))


def write_report(events: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(events), encoding="utf-8")


def render_report(events: list[dict[str, Any]]) -> str:
    session, steps, questions = _read(events)
    lines = [f"# Incident report: {questions[0].text if questions else '(no question)'}", ""]
    lines += _header(session, questions)
    backing: dict[int, list[str]] = {}  # cited step -> the values of the answer it backs
    for question in questions:
        lines += _question_section(question, steps, backing, several=len(questions) > 1)
    lines += _evidence_section(steps, backing)
    lines += _all_calls(steps)
    return "\n".join(lines).rstrip() + "\n"


def check_answer(answer: str, steps: dict[int, Step]) -> list[Check]:
    """Every number and moment of `answer` with the evidence steps that contain it."""
    checks: list[Check] = []
    for sentence in _sentences(answer):
        cited = [int(n) for n in CITATION.findall(sentence)]
        body = CITATION.sub(" ", sentence)
        for moment in _MOMENT.findall(body):
            found = [n for n, step in steps.items() if moment in step.text]
            checks.append(Check(moment, sentence, cited, found))
        for number in _NUMBER.findall(_MOMENT.sub(" ", body)):
            key = number.rstrip("%").replace(",", "")
            found = [n for n, step in steps.items() if key in step.numbers]
            checks.append(Check(number, sentence, cited, found))
    return checks


# --- reading the transcript -----------------------------------------------------------------------


def _read(events: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[int, Step], list[Question]]:
    session: dict[str, Any] = {}
    steps: dict[int, Step] = {}
    questions: list[Question] = []
    for event in events:
        kind = event.get("type")
        if kind == "session" and not session:
            session = event
        elif kind == "user":
            questions.append(
                Question(int(event.get("question") or len(questions) + 1), event.get("text", ""))
            )
        elif kind == "tool_call" and event.get("step") is not None:
            steps[int(event["step"])] = Step(
                number=int(event["step"]),
                tool=event.get("tool", "?"),
                server=event.get("server", "?"),
                remote_name=event.get("remote_name") or event.get("tool", "?"),
                arguments=event.get("arguments") or {},
                cost=event.get("cost", "?"),
            )
            if questions:
                questions[-1].steps.append(int(event["step"]))
        elif kind == "tool_result" and event.get("step") in steps:
            step = steps[event["step"]]
            step.text = event.get("text", "")
            step.is_error = bool(event.get("is_error"))
            step.result_id = event.get("result_id")
            step.request_id = event.get("request_id")
            step.quota_remaining = event.get("quota_remaining")
            step.time_range = event.get("time_range")
            step.elapsed = event.get("elapsed")
            step.numbers = {n.replace(",", "") for n in _EVIDENCE_NUMBER.findall(step.text)}
        elif kind == "answer" and questions:
            questions[-1].answer = event.get("text")
        elif kind == "end" and questions:
            questions[-1].status = event.get("status")
            questions[-1].reason = event.get("reason", "")
            questions[-1].spent = event.get("spent") or {}
    return session, steps, questions


def _sentences(text: str) -> list[str]:
    pieces: list[str] = []
    for line in text.splitlines():
        line = _LIST_MARKER.sub("", line)  # "1. " numbers a list, it is no claim
        pieces += [p for p in re.split(r"(?<=[.!?])\s+(?=[A-Z*])", line) if p.strip()]
    return pieces


# --- rendering ------------------------------------------------------------------------------------


def _header(session: dict[str, Any], questions: list[Question]) -> list[str]:
    budgeted = sum(q.spent.get("budgeted", 0) for q in questions)
    cheap = sum(q.spent.get("cheap", 0) for q in questions)
    return [
        f"- session: `{session.get('id', '?')}` ({session.get('provider', '?')} `{session.get('model', '?')}`), "
        f"started {session.get('t', '?')}",
        f"- quota spent: {budgeted} scroll/batch request(s), {cheap} aggregation/billing request(s)",
        "- citations `[#N]` point at the evidence below; every stored result can be read again at no quota",
        "",
    ]


def _question_section(
    question: Question, steps: dict[int, Step], backing: dict[int, list[str]], *, several: bool
) -> list[str]:
    title = f"Question {question.number}: " if several else "Question: "
    lines = [f"## {title}{question.text}", ""]
    if not question.answer:
        return [*lines, f"No answer: the question stopped ({question.status}: {question.reason}).", ""]
    lines += [CITATION.sub(lambda m: f"[#{m.group(1)}](#evidence-{m.group(1)})", question.answer), ""]
    cited = {int(n) for n in CITATION.findall(question.answer)}
    for number in cited & set(steps):
        backing.setdefault(number, [])
    lines += ["### Verification", ""]
    unknown = sorted(cited - set(steps))
    if unknown:
        lines.append(f"- ⚠ cited evidence that does not exist: {_refs(unknown)}")
    checks = check_answer(question.answer, steps)
    flagged = [c for c in checks if not c.ok]
    for check in flagged:
        lines.append(f"- ⚠ `{check.value}` {check.verdict}: “{_clip(check.sentence.strip(), 160)}”")
    verified = [c for c in checks if c.ok]
    clean = not flagged and not unknown
    lines.append(
        f"- {len(verified)} of {len(checks)} numbers and times found in the evidence they cite"
        + ("; nothing flagged" if clean else "")
    )
    if verified:
        found = [f"`{c.value}` {_refs(sorted(set(c.cited) & set(c.found_in)))}" for c in verified]
        lines.append("- verified: " + ", ".join(found))
    for check in verified:
        for number in set(check.cited) & set(check.found_in):
            backing.setdefault(number, []).append(check.value)
    return [*lines, ""]


def _evidence_section(steps: dict[int, Step], backing: dict[int, list[str]]) -> list[str]:
    if not backing:
        return []
    lines = ["## Evidence", ""]
    for number in sorted(backing):
        step = steps[number]
        failed = " (failed)" if step.is_error else ""
        lines += [f'<a id="evidence-{number}"></a>', f"### #{number} {step.tool}{failed}", ""]
        facts = [f"cost: {step.cost}"]
        if step.time_range:
            facts.append(f"window {step.time_range.get('start')} .. {step.time_range.get('end')}")
        if step.request_id:
            facts.append(f"request_id {step.request_id}")
        if step.quota_remaining is not None:
            facts.append(f"{step.quota_remaining} left after it")
        call = json.dumps(step.arguments, ensure_ascii=False)
        lines.append(f"- call: `{step.tool} {call}` ({'; '.join(facts)})")
        if step.result_id:
            lines.append(f"- stored as result `{step.result_id}`; read it again at no quota:")
            lines.append(f"  `{_command('results_search', {'result_id': step.result_id, 'size': 100})}`")
        if step.server == "cm":
            lines.append(
                f"- reproduce it (costs what the call cost): `{_command(step.remote_name, _pinned(step))}`"
            )
        lines += ["", "```text", *_excerpt(step.text, backing[number]), "```", ""]
    return lines


def _all_calls(steps: dict[int, Step]) -> list[str]:
    if not steps:
        return []
    lines = [
        "## All tool calls",
        "",
        "| # | tool | cost | outcome | result_id | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for number, step in sorted(steps.items()):
        outcome = "error" if step.is_error else "ok"
        seconds = f"{step.elapsed:.1f}" if step.elapsed is not None else ""
        lines.append(
            f"| {number} | {step.tool} | {step.cost} | {outcome} | {step.result_id or ''} | {seconds} |"
        )
    lines.append("")
    return lines


def _pinned(step: Step) -> dict[str, Any]:
    """The call with its relative window (now-24h) replaced by the absolute one the API used."""
    arguments = dict(step.arguments)
    if step.time_range and step.time_range.get("start") and "start_time" in arguments:
        arguments["start_time"] = step.time_range["start"]
    if step.time_range and step.time_range.get("end") and "end_time" in arguments:
        arguments["end_time"] = step.time_range["end"]
    return arguments


def _command(tool: str, arguments: dict[str, Any]) -> str:
    return f"cm-mcp call {tool} {shlex.quote(json.dumps(arguments, ensure_ascii=False))}"


def _excerpt(text: str, values: list[str]) -> list[str]:
    """The result's first line and the lines holding the values the answer took from it (else its
    first lines), so the report shows what backs each claim."""
    lines = [line.replace("`" * 3, "'" * 3) for line in text.splitlines()] or [""]
    wanted = {value.rstrip("%") for value in values}
    chosen = [0, *(i for i, line in enumerate(lines) if i and any(v in line for v in wanted))]
    if len(chosen) == 1:
        chosen = list(range(min(len(lines), _EXCERPT_LINES)))
    chosen = chosen[:_EXCERPT_LINES]
    shown: list[str] = []
    for previous, index in zip([-1, *chosen], chosen, strict=False):
        if index > previous + 1:
            shown.append("...")
        shown.append(lines[index])
    if chosen[-1] < len(lines) - 1:
        shown.append(f"... ({len(lines)} lines in all; cm-mcp replay shows the whole result)")
    return shown


def _refs(numbers: list[int]) -> str:
    return ", ".join(f"#{n}" for n in numbers)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
