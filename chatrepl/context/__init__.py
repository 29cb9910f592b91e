"""Context management: counting tokens, the window, fitting a conversation into it, cost."""
