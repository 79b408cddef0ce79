"""The chat agent: `cm-mcp ask`, `cm-mcp chat`, `cm-mcp replay`.

An MCP *client*: it talks to cm-mcp's own server (a `cm-mcp serve` child over stdio) and to any server of
`--mcp-config`, never importing `cm_mcp.server`. Layers, top down:

- `cli.py` (argparse only) -> `run.py` (ask/chat/replay orchestration, exit codes) and `repl.py`
- `loop.py`: one question = model requests and tool calls until an answer or a limit; `calls.py` runs
  the calls of a reply; `state.py` (limits, outcome, the UI protocol); `quota.py` (reading the
  server's quota_status); with
  `approval.py` (by quota cost), `context.py` (result caps, shrinking), `textcalls.py` (tool calls
  printed as text), `prompt.py` (the system prompt from `prompts/agent_system.md.j2`)
- `toolbox.py` (MCP sessions, tool catalogue with each tool's cost from its `_meta`, calls with
  progress, idle timeout and a cap) and `providers/` (anthropic, openai behind one interface)
- `conversation.py` (provider-neutral messages), `transcript.py` (JSONL sessions, resume),
  `report.py` (evidence-linked incident report), `replay.py`, `redact.py`, `ui.py`
"""
