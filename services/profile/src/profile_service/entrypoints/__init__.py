"""Entry points: the gRPC servicer and the process bootstrap."""
