"""Ingest: files to chunks to the vector store (parsing, chunking, labels, state)."""
