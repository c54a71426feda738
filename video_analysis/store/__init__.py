"""PostgreSQL: the schema, the one partition writer, the catalogue, stage outputs, search, indexes, reports."""
