"""What the user sees: the streaming renderer, one-line messages, tables, terminal safety."""
