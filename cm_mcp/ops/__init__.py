"""Domain operations: call the API with a validated request, shape the answer (no MCP)."""
