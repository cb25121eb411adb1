"""Entry points: the composition root (app) and the gRPC servicer."""
