"""Ray Serve applications (classic models, traffic router, LLM, RAG)."""
