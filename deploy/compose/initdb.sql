-- Dagster's own storage lives beside reelgraph's results, in its own database.
CREATE DATABASE dagster OWNER reelgraph;
\c reelgraph
CREATE EXTENSION IF NOT EXISTS vector;
