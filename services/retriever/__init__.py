"""Retriever service: help-center ingestion, embeddings and hybrid search on Qdrant."""
