"""Code every supportbot service shares: settings, logging, the gRPC server bootstrap, channels
and metrics."""
