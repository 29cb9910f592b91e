"""A small MCP server over stdio, written with the official SDK, for the tests."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("test-tools")


@server.tool()
def shout(text: str) -> str:
    """Return the text in capitals."""
    return text.upper()


@server.tool()
def count_words(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


if __name__ == "__main__":
    server.run("stdio")
