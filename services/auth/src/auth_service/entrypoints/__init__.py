"""Entry points: the gRPC servicer, the server bootstrap and the command line."""
