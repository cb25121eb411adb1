"""Generated protobuf and gRPC code for every Switchyard contract (see protos/)."""
