"""The conversation engine: the history sent to the model and the turn transaction."""
