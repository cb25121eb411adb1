"""service_layer layer of the recommendation service."""
