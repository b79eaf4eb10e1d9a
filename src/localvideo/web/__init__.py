"""REST API and web UI, thin over the service layer."""
