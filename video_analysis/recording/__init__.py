"""Recording live cameras into archive segments that the pipeline picks up like any upload."""
