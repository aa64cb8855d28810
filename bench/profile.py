"""``python -m bench.profile``: cProfile of the web side (brief form) and of one worker
(an RQ SimpleWorker in burst mode, in this process) over the same backlog as P1/P2."""

from __future__ import annotations

import cProfile
import os
import pstats
import sys

from . import env as bench_env


def main(n: int = 200, run_ms: float = 0) -> None:
    env = bench_env.setup()
    users = bench_env.users()
    import django_rq
    from django.conf import settings
    from django.test import Client
    from rq import SimpleWorker

    from reviewapp.accounts import roles

    from . import pipeline
    from .procs import start_sim

    sim = start_sim(env["tmp"], "profile", ms_per_megapixel=pipeline.ms_per_megapixel(run_ms, 64))
    settings.COMFYUI_POOLS = {"default": (sim.url,)}
    os.environ["COMFYUI_URL"] = sim.url
    try:
        client = Client()
        client.force_login(users[roles.OPERATOR])
        web = cProfile.Profile()
        web.enable()
        pipeline.submit(client, pipeline.swatch_briefs(env, n, 64))
        web.disable()
        queue = django_rq.get_queue("default")
        worker = cProfile.Profile()
        worker.enable()
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        worker.disable()
    finally:
        sim.stop()
    for name, prof in (("web (brief form POST)", web), ("worker", worker)):
        print(f"==== {name}, {n} generations", file=sys.stdout)
        pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(18)
        pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
