"""gunicorn settings read from the working directory: the server's shape, Prometheus metrics
shared by workers, and a garbage collector that leaves the application's own objects alone.

Every setting may be overridden on the command line or in ``GUNICORN_CMD_ARGS``.
"""

import os
import shutil

# MAIS's requests are CPU-bound on the application side (a few ms of Python each) and brief on
# PostgreSQL's. One request per process, and one process more than there are cores, so that a
# process waiting on the database leaves no core idle. Sync workers take each connection from
# the shared listening socket when they are free; threaded (gthread) workers keep the keep-alive
# connections they happened to accept, and under load one of two once held 47 of 50 (bench.load),
# so its clients waited twice as long as the mean. Sync workers want a buffering proxy in front
# (nginx, a cloud load balancer), as gunicorn's documentation says; see docs/operations.md.
worker_class = "sync"
workers = int(os.environ.get("WEB_CONCURRENCY") or (os.cpu_count() or 1) + 1)


def on_starting(server):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        # Samples of an earlier run would be added to this one's.
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):  # noqa: ANN001, ANN201
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):  # noqa: ANN001, ANN201
    import gc

    # What the application built at start (modules, mappers, templates) lives as long as the
    # worker: freezing it keeps full collections, which stop every thread, short.
    gc.freeze()
