"""The ASGI server: parse the request, call the core, write the response."""
