"""Calibrate search's relevance floor on the sample clips: how close the best track comes to each query.

    .venv/bin/python benchmarks/relevance.py [--videos ../shared/data/videos]

Processes every sample clip with `reelgraph process` in a scratch state folder (offline profile), then,
for queries about what the clips hold and queries about what they do not, prints the highest cosine
similarity between the query and any track description (text vectors, the model search uses) and
what a search with the configured floor returns. The floor belongs between the two groups.

A second table does the same for incident types: how close each query comes to what the nearest type
means, against the incident floor.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRESENT = ["person", "a person walking", "people", "bottle", "bottles on a table", "someone in dark clothes",
           "how many people came in?", "were there bottles on the table?"]
EVENTS = ["was anyone hanging around?", "someone hanging around", "loitering near the table", "did someone loiter?",
          "is there a crowd?", "people gathering", "anyone running?", "somebody sprinting", "did someone leave a bag?",
          "someone in the restricted area", "was anybody waiting by the door?"]
NOT_EVENTS = ["lorry", "truck", "car", "bicycle", "dog", "fire", "bottle", "where is the red car?", "a man in black"]
ABSENT = ["car", "a red car", "dog", "a black dog", "people fighting", "bicycle", "truck", "airplane",
          "a cat on the sofa", "fire", "where is the red car?", "did a dog walk by?"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", default=str(ROOT.parent / "shared" / "data" / "videos"))
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="reelgraph-relevance-"))
    os.environ.update({"REELGRAPH_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
                       "REELGRAPH_MODEL_PROFILE": "offline"})
    reelgraph = str(Path(sys.executable).parent / "reelgraph")
    clips = sorted(str(p) for p in Path(args.videos).glob("*.mp4"))
    try:
        subprocess.run([reelgraph, "process", *clips], check=True, capture_output=True)
        from orchestration.cli import load_search
        from video_analysis.search import search

        ctx = load_search().searcher
        with ctx.database.session() as conn:
            tracks = conn.execute("SELECT count(*) FROM embeddings WHERE kind = 'track_text'").fetchone()[0]
            print(f"{len(clips)} clips, {tracks} track descriptions, model {ctx.text_model_name}, "
                  f"floor {ctx.min_similarity}\n")
            print("| query | about | best track similarity | best summary similarity | track hits with the floor | "
                  "first hit |\n|---|---|---|---|---|---|")
            for group, queries in (("present", PRESENT), ("absent", ABSENT)):
                for query in queries:
                    vector = ctx.text_embedder.embed([query])[0]
                    literal = "[" + ",".join(f"{x:.7f}" for x in vector) + "]"
                    best, summary = conn.execute(
                        "SELECT max(1 - (embedding::vector(384) <=> %(v)s::vector(384))) FILTER (WHERE kind = "
                        "'track_text'), max(1 - (embedding::vector(384) <=> %(v)s::vector(384))) FILTER (WHERE "
                        "kind = 'summary_text') FROM embeddings", {"v": literal}).fetchone()
                    hits = search(conn, query, ctx.text_embedder, ctx.text_model_name, limit=50,
                                  min_similarity=ctx.min_similarity)
                    first = f"{hits[0].class_name} in {hits[0].object_key}" if hits else "-"
                    print(f"| {query} | {group} | {best:.3f} | {summary:.3f} | {len(hits)} | {first} |", flush=True)
        from video_analysis.search import incident_similarity

        print(f"\nincident floor {ctx.min_incident_similarity}\n\n| query | about | nearest incident type | "
              "similarity | passes |\n|---|---|---|---|---|")
        for group, queries in (("an incident", EVENTS), ("no incident", NOT_EVENTS)):
            for query in queries:
                similarity = incident_similarity(ctx.text_embedder, ctx.text_embedder.embed([query])[0])
                nearest = max(similarity, key=similarity.get)
                passes = "yes" if similarity[nearest] >= ctx.min_incident_similarity else "no"
                print(f"| {query} | {group} | {nearest} | {similarity[nearest]:.3f} | {passes} |", flush=True)
    finally:
        from video_analysis.runtime.embedded_postgres import EmbeddedPostgres

        EmbeddedPostgres(home / "postgres").discard()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
