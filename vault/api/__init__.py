"""FastAPI application: thin routers over the domain services."""
