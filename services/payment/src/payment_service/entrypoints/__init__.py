"""The gRPC servicer and the command line."""
