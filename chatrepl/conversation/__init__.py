"""The conversation as data: messages, conversations, the session file format and store."""
