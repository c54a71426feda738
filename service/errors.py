"""How the service answers what went wrong: a clear status and detail, never a stack trace."""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

from service.context import Busy

log = logging.getLogger("service.app")


def install(app: FastAPI) -> None:
    """Each failure a request may meet, as the status a client can act on."""

    @app.exception_handler(Busy)
    async def busy(_request: Request, exc: Busy) -> JSONResponse:
        return JSONResponse({"detail": f"too many {exc.args[0]} at once; retry in a few seconds"}, status_code=429,
                            headers={"Retry-After": "5"})

    @app.exception_handler(psycopg.errors.QueryCanceled)
    async def too_long(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("a request's statement was cancelled: %s", exc)
        return JSONResponse({"detail": "the database took longer than this service allows for one request; "
                                       "narrow it (camera, since, until) or retry"}, status_code=503)

    @app.exception_handler(PoolTimeout)
    async def no_connection(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("no database connection was free in time: %s", exc)
        return JSONResponse({"detail": "the service is busy; retry in a few seconds"}, status_code=503,
                            headers={"Retry-After": "5"})

    @app.exception_handler(psycopg.errors.LockNotAvailable)
    async def locked(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("a request waited too long on a lock: %s", exc)
        return JSONResponse({"detail": "the database is busy (a migration or an index build); retry shortly"},
                            status_code=503, headers={"Retry-After": "10"})

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in error['loc'][1:]) or 'request'}: {error['msg']}"
                    for error in exc.errors()]
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed")
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the service log"},
                            status_code=500)
