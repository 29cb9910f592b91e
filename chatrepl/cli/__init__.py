"""The command line: the console script, the typer app, `ask` and the subcommands."""
