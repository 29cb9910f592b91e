"""Tools the model can call: Python functions, MCP servers' tools and a few built-ins, run
through one Toolbox that confirms, runs and reports each call."""
