"""Gateway service: the public ChatService API. Routes each chat turn to the retriever and the
generator, keeps sessions in Redis and logs every interaction for offline evaluation."""
