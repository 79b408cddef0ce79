"""The chat agent: `cm-mcp ask`, `cm-mcp chat`, `cm-mcp replay`.

An MCP *client*: it talks to cm-mcp's own server (a `cm-mcp serve` child over stdio) and to any server of
`--mcp-config`, never importing `cm_mcp.server`. Modules, top down:

- `cli.py` (argparse only) -> `run.py` (session set-up, `ask`, exit codes), `repl.py` (`chat`),
  `replay.py`, `report.py` (the evidence-linked incident report)
- `loop.py`: one question, model requests until an answer or a limit; `calls.py`: the tool calls of
  one reply (approval by cost in `approval.py`, repeats, spend read from the server's quota through
  `quota.py`); `context.py` (result caps, shrinking near the window); `textcalls.py` (tool calls a
  model printed as text); `prompt.py` (the system prompt and status note from `prompts/agent_*.j2`);
  `state.py` (limits, outcome, the UI protocol) and `ui.py` (the terminal)
- `toolbox.py` (MCP sessions, each tool's cost from its `_meta`, calls with progress, an idle timeout
  and a cap), `servers.py` (our server, `--mcp-config`), `providers/` (anthropic, openai behind one
  interface)
- `conversation.py` (provider-neutral messages), `transcript.py` (JSONL sessions, resume),
  `redact.py` (secrets never leave), `settings.py` (`CM_AGENT_*`, provider keys)
"""
