"""An aiohttp backend with the ltx2 webhook receiver mounted as a sub-app.

POST /videos {"image": "https://…", "prompt": "…"} submits a job and answers with its id at
once; GET /videos/{id} tells its status; Eachlabs calls back at /hooks/ltx2/… and the job
resolves in the background.

    EACHLABS_API_KEY=… PUBLIC_URL=https://api.example.com python examples/aiohttp_backend.py
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from aiohttp import web

import ltx2

RECEIVER = web.AppKey("receiver", ltx2.WebhookReceiver)
CLIENT = web.AppKey("client", ltx2.Client)
JOBS = web.AppKey("jobs", dict)


async def ltx2_client(app: web.Application) -> AsyncIterator[None]:
    async with ltx2.Client("eachlabs", webhooks=app[RECEIVER]) as client:
        app[CLIENT] = client
        yield


async def create_video(request: web.Request) -> web.Response:
    body = await request.json()
    try:
        job = await request.app[CLIENT].submit(image=body.get("image"), prompt=body.get("prompt"))
    except ltx2.InvalidRequestError as exc:
        return web.json_response({"error": str(exc), "field": exc.field}, status=400)
    request.app[JOBS][job.id] = job
    return web.json_response({"id": job.id, "status": job.status.value}, status=202)


async def get_video(request: web.Request) -> web.Response:
    job = request.app[JOBS].get(request.match_info["id"])
    if job is None:
        raise web.HTTPNotFound()
    answer: dict[str, object] = {"id": job.id, "status": job.status.value}
    if job.done:
        try:
            answer["url"] = (await job).url
        except ltx2.LTX2Error as exc:
            answer["error"] = str(exc)
    return web.json_response(answer)


def make_app() -> web.Application:
    public = os.environ.get("PUBLIC_URL", "http://127.0.0.1:8080")
    app = web.Application()
    app[RECEIVER] = ltx2.WebhookReceiver(f"{public}/hooks/ltx2")
    app[JOBS] = {}
    app.add_subapp("/hooks/ltx2", app[RECEIVER].app)
    app.cleanup_ctx.append(ltx2_client)
    app.router.add_post("/videos", create_video)
    app.router.add_get("/videos/{id}", get_video)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=8080)
