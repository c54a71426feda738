"""Configuration, read at the edge: the environment is read here and nowhere else, by the entry points (the
Dagster definitions, the command line, the service), and what the library needs is passed down to it."""
