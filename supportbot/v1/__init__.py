"""Generated gRPC code for supportbot.v1; regenerate with scripts/generate_protos.py."""
