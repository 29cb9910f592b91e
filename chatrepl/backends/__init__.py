"""Model backends: the OpenAI SDK (any compatible server) and the embedded llama.cpp model."""
