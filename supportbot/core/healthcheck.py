"""`python -m supportbot.core.healthcheck HOST:PORT [SERVICE]`: exits 0 when the server answers
SERVING on the standard gRPC health protocol (used by container health checks)."""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(address: str, service: str = "", timeout_s: float = 3.0) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
    return response.status == health_pb2.HealthCheckResponse.SERVING


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m supportbot.core.healthcheck HOST:PORT [SERVICE]")
    sys.exit(0 if check(*sys.argv[1:]) else 1)
