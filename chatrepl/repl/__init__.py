"""The interactive REPL: the loop, the prompt line and the slash-command table."""
