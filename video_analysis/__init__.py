"""reelgraph's video-analysis library: plain Python with no Dagster import, usable from a notebook or a script.

- `vision`: pure computation on pixels and numbers: decoding and probing, detectors, tracking, attributes,
  embedding and vision-language models.
- `events`: rule-based incidents, the safety score and the templated summary.
- `store`: PostgreSQL + pgvector: the schema, the one partition writer, the catalogue, stage outputs,
  search, vector indexes, reports, quality checks.
- `runtime`: where things run and live: the embedded PostgreSQL, the state folder, settings, object stores
  and keys, alerts.
- `stages`: one `run(...) -> StageResult` per stage, composing the above for one video; the Dagster
  assets, `reelgraph process` and the benchmarks all call these.
"""
