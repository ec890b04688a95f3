"""Research: documents, chunking, the Iris fetcher, web search, curiosity and rag-context."""
