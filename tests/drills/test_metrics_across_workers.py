"""Under gunicorn with several workers, /metrics counts the requests of every worker, not only
those of the worker that happens to answer the scrape."""

from __future__ import annotations

import re

from tests.drills.harness import AppProcess
from tests.drills.http import send

REQUESTS = 40


def test_metrics_add_up_every_worker(drill_database, drill_mail_dir, tmp_path):
    server = AppProcess(
        drill_database,
        drill_mail_dir,
        workers=3,
        threads=1,
        extra_env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")},
    ).start()
    try:
        before = _health_requests(server)
        for _ in range(REQUESTS):
            assert send("GET", server.base_url + "/health").status == 200
        scrapes = {_health_requests(server) - before for _ in range(6)}
    finally:
        server.stop()
    # Every scrape, whichever worker serves it, sees all the requests (and the earlier scrapes
    # add none: /metrics is its own endpoint).
    assert scrapes == {REQUESTS}


def _health_requests(server: AppProcess) -> int:
    text = send("GET", server.base_url + "/metrics").body
    pattern = r'mais_request_duration_seconds_count\{[^}]*endpoint="ops.health"[^}]*\} (\S+)'
    return int(sum(float(value) for value in re.findall(pattern, text)))
