"""cm-mcp: investigate incidents through the Central Monitoring API from any MCP client."""

__version__ = "0.1.0"
