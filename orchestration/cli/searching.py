"""`search`, `ask` and `serve`: what the pipeline found, asked for."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from orchestration.cli.common import _when, log


# -- search ----------------------------------------------------------------------------------------
def _service_hits(args) -> list[dict] | None:
    """The hits from a running `reelgraph serve` (models already loaded there), or None when none answers,
    or when the one that answers reads another database than this process would."""
    import urllib.error
    import urllib.parse
    import urllib.request

    from configuration.settings import Settings

    settings = Settings.from_env()
    url, token = settings.service_url.rstrip("/"), settings.service_token or ""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    since, until = _when(args.since), _when(args.until)  # zoneless times are UTC, here as in --local
    params = {"q": args.query, "camera": args.camera, "since": since.isoformat() if since else None,
              "until": until.isoformat() if until else None,
              "class": args.class_name, "color": args.color, "incident": args.incident, "video": args.video,
              "kind": args.kind, "history": "true" if args.history else None, "limit": args.limit}
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})

    def get(path: str, timeout_s: float):
        with urllib.request.urlopen(urllib.request.Request(f"{url}{path}", headers=headers),
                                    timeout=timeout_s) as response:
            return json.load(response)

    try:
        health = get("/api/health", 5)
        if "videos" not in health:  # it answers the signed-in only
            log.warning("the service at %s needs a token (REELGRAPH_SERVICE_TOKEN): searching here", url)
            return None
        if health.get("database") != _local_store_identity():
            log.warning("the service at %s reads another database (or none it names): searching here", url)
            return None
        hits = get(f"/api/search?{query}", 30)["hits"]
        log.info("searched through the service at %s", url)
        return hits
    except urllib.error.HTTPError as exc:
        try:
            detail = json.load(exc).get("detail")
        except (ValueError, AttributeError):
            detail = None
        if exc.code == 422 and detail:  # the service answered: a bad parameter, say why
            raise SystemExit(f"reelgraph search: {detail}") from exc
        if exc.code == 401:
            log.warning("the service at %s needs a token (REELGRAPH_SERVICE_TOKEN): searching here", url)
        return None  # something else answers there: search here
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _local_store_identity() -> str:
    from resources import PostgresResource
    from video_analysis.store.db import store_identity

    with PostgresResource().session() as conn:
        return store_identity(conn)


# What the service adds to a hit for its page (where to see it): left out of what the command line prints, so
# a search through the service prints what one run here prints.
SERVICE_ONLY = ("thumbnail_url", "clip_url", "dagster_url", "similar_url", "footage", "footage_note")


def cmd_search(args) -> int:
    from video_analysis.search import SearchFilters

    hits = None if args.local else _service_hits(args)
    if hits is None:  # no service running: the same search, here (models load first, which takes seconds)
        filters = SearchFilters(video=args.video, camera=args.camera, since=_when(args.since),
                                until=_when(args.until), class_name=args.class_name, color=args.color,
                                incident=args.incident, history=args.history)
        hits = [hit.as_dict() for hit in load_search().searcher.find(args.query, filters, args.kind, args.limit)]
    hits = [{key: value for key, value in hit.items() if key not in SERVICE_ONLY} for hit in hits]
    if args.json:
        print(json.dumps(hits, indent=2))
        return 0
    if not hits:
        print("nothing matches: nothing found is close enough in meaning or shares its words")
        return 0
    for h in hits:
        when = h["starts_at"] or f"{h['start_s']:.1f}s"
        what = f"track {h['track_id']} ({h['class_name']})" if h["kind"] == "track" else h["kind"]
        print(f"{h['score']:.4f}  {h['object_key']}  {when}-{h['end_s']:.1f}s  {what}  {h['text']}")
    return 0


@dataclass
class LoadedSearch:
    """What searching and answering need, loaded once: the searcher (models, floors, a database pool) and the
    language model that writes answers, when there is one."""

    settings: object
    searcher: object
    writer: object | None = None
    writer_name: str | None = None


def load_search(answers: bool = False, serving: bool = False) -> LoadedSearch:
    """The models search needs and a database pool; with ``answers``, also the language model that writes
    answers (when the profile has one and its weights are cached). ``serving``: for a process answering many
    queries, which embeds them through ONNX Runtime on the service's thread count, also where the text model
    itself runs on a GPU (see Settings.text_runtime)."""
    from configuration.settings import Settings
    from resources import ModelRegistryResource, PostgresResource
    from video_analysis.search import Searcher
    from video_analysis.store.db import PooledDatabase

    settings = Settings.from_env()
    models = ModelRegistryResource()
    model, embedder = models.load("text_embedder")
    if serving and settings.text_runtime == "onnx":
        embedder = _fast_query_embedder(embedder, settings)
    image_model, image_embedder, _ = models.load_optional("image_embedder", allow_download=False)
    writer_model, writer = None, None
    if answers and settings.answer_writer != "off":
        try:
            writer_model, writer, _ = models.load_optional("summarizer", allow_download=False)
        except Exception as exc:  # noqa: BLE001 - an optional writer that cannot load leaves the template
            log.warning("the answer writer did not load (%s: %s); answers use the template", type(exc).__name__, exc)
            writer_model, writer = None, None
    # each search holds two connections (tracks and events side by side), each answer one search; health one
    pool_size = 2 * (settings.service_max_searches + settings.service_max_answers) + 2
    database = PooledDatabase(PostgresResource().dsn(), max_size=pool_size,
                              statement_timeout_ms=settings.service_statement_timeout_ms,
                              lock_timeout_ms=settings.service_lock_timeout_ms, wait_s=5.0)
    searcher = Searcher(database, embedder, model.name, image_embedder, image_model.name if image_model else None,
                        settings.search_min_similarity, settings.search_min_summary_similarity,
                        settings.search_min_incident_similarity, site_timezone=settings.site_timezone)
    return LoadedSearch(settings, searcher, writer, writer_model.name if writer_model else None)


def service_context(answers: bool = False, serving: bool = False):
    """The review service's database, store and models, loaded once (``load_search``)."""
    from resources import ObjectStoreResource
    from service.app import ServiceContext

    loaded = load_search(answers, serving)
    searcher, settings = loaded.searcher, loaded.settings
    return ServiceContext(
        database=searcher.database, store=ObjectStoreResource().store(), text_embedder=searcher.text_embedder,
        text_model_name=searcher.text_model_name, image_embedder=searcher.image_embedder,
        image_model_name=searcher.image_model_name, min_similarity=searcher.min_similarity,
        min_summary_similarity=searcher.min_summary_similarity,
        min_incident_similarity=searcher.min_incident_similarity, workers=searcher.workers,
        site_timezone=searcher.site_timezone, answer_writer=loaded.writer, answer_writer_name=loaded.writer_name,
        dagster_url=settings.dagster_url, max_answers=settings.service_max_answers,
        max_searches=settings.service_max_searches, disk_floor=settings.floor)


def _fast_query_embedder(embedder, settings):
    """The text model through ONNX Runtime on the service's threads (REELGRAPH_SERVICE_TORCH_THREADS),
    exported once into the models cache where the model was loaded through torch (on a GPU, say); else the
    model as it is."""
    from video_analysis.vision.embedders import OnnxTextEmbedder, TextEmbedder

    if isinstance(embedder, OnnxTextEmbedder):
        return embedder.with_threads(settings.service_torch_threads)
    if not isinstance(embedder, TextEmbedder):  # an image-text model embeds queries as it is
        return embedder
    try:
        return OnnxTextEmbedder.exported(embedder, settings.model_cache_dir() / "onnx",
                                         threads=settings.service_torch_threads)
    except Exception as exc:  # noqa: BLE001 - torch embeds the same vectors, only slower
        log.warning("queries are embedded through torch (%s: %s)", type(exc).__name__, exc)
        return embedder


def cmd_ask(args) -> int:
    from video_analysis.search import SearchFilters

    loaded = load_search(answers=True)
    writer = loaded.writer.write_answer if loaded.writer is not None else None
    found = loaded.searcher.answer(args.question, SearchFilters(camera=args.camera, since=_when(args.since),
                                                                until=_when(args.until)),
                                   writer, loaded.writer_name or "language model",
                                   phraser=getattr(loaded.writer, "phrase_query", None))
    if args.json:
        print(json.dumps({"question": found.question, "answer": found.text, "generator": found.generator,
                          "note": found.note, "citations": [c.__dict__ for c in found.citations]}, indent=2))
        return 0
    print(found.text)
    print(f"  (written by {found.generator}" + (f"; {found.note})" if found.note else ")"))
    for citation in found.citations:
        print(f"  [{citation.ref}] {citation.object_key} {citation.start_s:.1f}-{citation.end_s:.1f} s "
              f"({citation.partition_key})")
    return 0


def cmd_serve(args) -> int:
    import torch
    import uvicorn

    from configuration.settings import Settings
    from service.access import AccessError, AccessPolicy, read_tokens
    from service.app import create_app

    settings = Settings.from_env()
    try:  # before any model loads: a bind that would expose the footage without a token stops here
        policy = AccessPolicy.for_bind(args.host, read_tokens(settings.service_tokens, settings.service_tokens_file),
                                       settings.service_hosts)
    except AccessError as exc:
        print(f"reelgraph serve: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, settings.service_torch_threads))
    app = create_app(service_context(answers=True, serving=True), policy)
    access = "open on loopback" if policy.open else f"{len(policy.tokens)} token(s) required"
    print(f"reelgraph serve: http://{args.host}:{args.port}/ (API docs at /docs; {access}; "
          f"answers to Host {', '.join(policy.hosts)})", flush=True)
    # On a stop signal, requests in flight get up to 20 s to finish. Behind a reverse proxy that terminates TLS,
    # REELGRAPH_SERVICE_FORWARDED_ALLOW_IPS names it, so its X-Forwarded-Proto makes the sign-in cookie Secure.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if not args.verbose else "info",
                timeout_graceful_shutdown=20, forwarded_allow_ips=settings.service_forwarded_allow_ips)
    return 0
