-- Dagster's own storage lives beside reelgraph's results, in its own database.
CREATE DATABASE dagster;  -- owned by the POSTGRES_USER that runs this script
\c reelgraph
CREATE EXTENSION IF NOT EXISTS vector;
