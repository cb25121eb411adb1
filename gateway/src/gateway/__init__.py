"""The Switchyard HTTP gateway."""
