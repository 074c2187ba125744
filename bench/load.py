"""Load benchmark: MAIS under gunicorn on PostgreSQL, driven by wrk.

    .venv/bin/python -m bench.load [--seconds 5] [--concurrency 10,50,100]

Starts a throwaway PostgreSQL cluster, migrates and seeds it, serves MAIS and a bare Flask
route with the same gunicorn settings, and reports requests per second and p50/p95/p99 for each
endpoint and concurrency, every rate also as a ratio to the bare route measured in the same run,
plus the memory of each gunicorn worker. Everything listens on 127.0.0.1; every run is bounded in
time. Needs Debian's ``wrk`` (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.drills.harness import (  # noqa: E402
    VENV_BIN,
    ThrowawayPostgres,
    app_environment,
    listening_socket,
    migrate,
)

GUNICORN = ["--timeout", "60", "--log-level", "warning"]
HOST_ORIGIN = "https://studio.example"


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_rss_mib(self) -> list[float]:
        children = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout.split()
        sizes = []
        for pid in children:
            status = Path(f"/proc/{pid}/status").read_text()
            rss_kib = next(
                int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
            )
            sizes.append(round(rss_kib / 1024, 1))
        return sizes

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(child) for child in found.stdout.split()]


def cpu_seconds(root_pid: int) -> float:
    """User and system CPU of a process and its children (gunicorn's workers, PostgreSQL's
    backends) so far; backends that exited meanwhile are not counted."""
    total = 0
    for pid in [root_pid, *_children(root_pid)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _CLOCK_TICKS


def start_gunicorn(
    name: str,
    target: str,
    env: dict[str, str],
    log_dir: Path,
    shape: list[str],
) -> Server:
    listener = listening_socket()
    port = listener.getsockname()[1]
    log = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [
            str(VENV_BIN / "gunicorn"),
            "--bind",
            f"fd://{listener.fileno()}",
            *GUNICORN,
            *shape,
            target,
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        pass_fds=(listener.fileno(),),
    )
    listener.close()  # gunicorn has its own copy
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        probe = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}/"],
            capture_output=True,
            text=True,
        )
        if probe.stdout not in ("000", ""):
            return Server(name, process, port)
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not start; see {log.name}")


CPU_WATCH: dict[str, int] = {}  # name -> root pid, sampled around every measured run


def wrk(
    url: str,
    concurrency: int,
    seconds: int,
    *,
    bodies: Path | None = None,
    header: str | None = None,
) -> dict:
    before = {name: cpu_seconds(pid) for name, pid in CPU_WATCH.items()}
    load_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = dict(os.environ)
    if bodies:
        env["BODIES"] = str(bodies)
    if header:
        env["HEADER"] = header
    threads = min(2, concurrency)
    env["THREADS"] = str(threads)
    result = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(concurrency),
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench" / "report.lua"),
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=seconds + 60,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("{"))
    figures = json.loads(line)
    figures["rps"] = round(figures["requests"] / figures["seconds"], 1)
    if figures["bodies_reused"]:
        # A date held twice answers 409, an event delivered twice is a cheap duplicate: either
        # would measure something else than the row says.
        print(f"WARNING: {url} ran out of distinct bodies; raise --tenants", file=sys.stderr)
    load_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    requests = max(figures["requests"], 1)
    # CPU per request, in ms: where the two cores went (the server under test is the one
    # that moved; the others idle).
    figures["cpu_ms"] = {
        name: round((cpu_seconds(pid) - before[name]) * 1000 / requests, 3)
        for name, pid in CPU_WATCH.items()
    }
    load_cpu = (load_after.ru_utime + load_after.ru_stime) - (
        load_before.ru_utime + load_before.ru_stime
    )
    figures["cpu_ms"]["wrk"] = round(load_cpu * 1000 / requests, 3)
    return figures


def seed(app_env: dict[str, str], tenants: int, holds_per_tenant: int, tmp: Path) -> dict:
    """Seed tenants and prepare request bodies in a child process with the app's config."""
    out = tmp / "seed.json"
    code = f"""
import json, urllib.parse
from datetime import date, timedelta
from app import create_app
from mais import booking
from mais.extensions import db
from tests.factories import make_addon, make_package, make_segment, make_tenant
from widget.state import Selection, sign_selection
app = create_app()
result = {{"tenants": []}}
with app.app_context():
    for t in range({tenants}):
        tenant = make_tenant(allowed_origins=["{HOST_ORIGIN}"])
        addons = [make_addon(tenant, f"Extra {{i}}", 5000 + i) for i in range(4)]
        for s in range(3):
            segment = make_segment(tenant, f"Segment {{s}}")
            for p in range(6):
                make_package(tenant, f"Package {{s}}-{{p}}", 100000 + p * 1000,
                             segment=segment, addons=addons)
        db.session.commit()
        couple = booking.validate_couple("Bench Couple", "", "bench@example.com", "")
        start = date.today() + timedelta(days=2)
        webhook_holds = []
        for i in range({holds_per_tenant}):
            hold = booking.hold_date(tenant, package_slug="package-0-0",
                                     addon_ids=[], on_date=start + timedelta(days=i), couple=couple)
            webhook_holds.append(hold.id)
            db.session.commit()  # as the Pay view does: each hold is committed at once
        pay_bodies = [
            f"/book/{{tenant.slug}}/pay\t" + urllib.parse.urlencode({{"s": sign_selection(tenant.id, Selection(
                "package-0-0", (), start + timedelta(days={holds_per_tenant} + i)).with_couple(
                {{"couple_name": "Bench", "email": "bench@example.com"}}))}})
            for i in range(700 - {holds_per_tenant})
        ]
        result["tenants"].append({{"id": tenant.id, "slug": tenant.slug,
            "public_key": tenant.issued_keys.public_key, "webhook_holds": webhook_holds,
            "pay_bodies": pay_bodies}})
json.dump(result, open({str(out)!r}, "w"))
"""
    subprocess.run([str(VENV_BIN / "python"), "-c", code], cwd=ROOT, env=app_env, check=True)
    return json.loads(out.read_text())


def webhook_lines(seeded: dict) -> list[str]:
    from mais.payments import sign_payload
    from tests.support import TEST_WEBHOOK_SECRET

    lines = []
    for tenant in seeded["tenants"]:
        for hold_id in tenant["webhook_holds"]:
            payload = json.dumps(
                {
                    "id": f"evt_bench_{hold_id}",
                    "object": "event",
                    "created": int(time.time()),
                    "type": "checkout.session.completed",
                    "data": {
                        "object": {
                            "id": f"cs_bench_{hold_id}",
                            "object": "checkout.session",
                            "payment_intent": f"pi_bench_{hold_id}",
                            "payment_status": "paid",
                            "metadata": {"tenant_id": str(tenant["id"]), "hold_id": hold_id},
                        }
                    },
                }
            )
            signature = sign_payload(payload, TEST_WEBHOOK_SECRET)
            lines.append(f"webhook\t/webhooks/stripe\t{signature}\t{payload}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--concurrency", default="10,50,100")
    parser.add_argument("--tenants", type=int, default=30)
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/7",
        help="the cache's Redis (its database is emptied first); '' for the in-process cache",
    )
    parser.add_argument(
        "--gunicorn",
        default="",
        help="extra gunicorn arguments for every server (default: gunicorn.conf.py's shape), "
        "e.g. '--worker-class gthread --workers 2 --threads 2'",
    )
    parser.add_argument(
        "--only", default="", help="comma-separated row names to run (besides the baseline)"
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    only = [word for word in args.only.split(",") if word]
    if not shutil.which("wrk"):
        raise SystemExit("bench.load needs wrk: apt-get install wrk")

    tmp = Path(tempfile.mkdtemp(prefix="mais-bench-"))
    cluster = ThrowawayPostgres().init()
    servers: list[Server] = []
    try:
        url = cluster.create_database("mais_bench")
        mail_dir = tmp / "mail"
        migrate(url, mail_dir)
        warm_env = app_environment(
            url,
            "http://127.0.0.1",
            mail_dir,
            MAIS_API_RATE_LIMIT="1000000 per minute",
            # The load is what is measured here, not the limiter that would turn it away.
            MAIS_RATE_LIMITS="off",
        )
        if args.redis:
            # As in production, where several worker processes must share one cache.
            import redis

            redis.Redis.from_url(args.redis).flushdb()
            warm_env["REDIS_URL"] = args.redis
        cold_env = {**warm_env, "MAIS_CACHE_TYPE": "NullCache"}
        # Holds for the webhook run; Pay runs use the remaining dates of the horizon.
        per_tenant = 350
        seeded = seed(warm_env, args.tenants, per_tenant, tmp)

        shape = args.gunicorn.split()
        bare = start_gunicorn("bare", "bench.bare:create_bare_app()", warm_env, tmp, shape)
        warm = start_gunicorn("mais-warm", "app:create_app()", warm_env, tmp, shape)
        cold = start_gunicorn("mais-cold", "app:create_app()", cold_env, tmp, shape)
        servers += [bare, warm, cold]
        postmaster = int((cluster.directory / "data" / "postmaster.pid").read_text().split()[0])
        CPU_WATCH.update(
            {"bare": bare.process.pid, "warm": warm.process.pid, "cold": cold.process.pid}
        )
        CPU_WATCH["postgres"] = postmaster
        if args.redis:
            found = subprocess.run(["pgrep", "-x", "redis-server"], capture_output=True, text=True)
            if found.stdout.split():
                CPU_WATCH["redis"] = int(found.stdout.split()[0])

        first = seeded["tenants"][0]
        widget_path = (
            f"/widget/{first['slug']}/?key={first['public_key']}"
            f"&origin={urllib.parse.quote(HOST_ORIGIN, safe='')}"
        )
        key_header = f"X-Tenant-Key: {first['public_key']}"
        pay_files, webhook_files = [], []
        pay_lines = [f"pay\t{body}" for t in seeded["tenants"] for body in t["pay_bodies"]]
        hooks = webhook_lines(seeded)
        for n, _ in enumerate(levels):
            pay_file, hook_file = tmp / f"pay{n}.txt", tmp / f"hooks{n}.txt"
            pay_file.write_text("\n".join(pay_lines[n :: len(levels)]) + "\n")
            hook_file.write_text("\n".join(hooks[n :: len(levels)]) + "\n")
            pay_files.append(pay_file)
            webhook_files.append(hook_file)

        # "Warm" means what a server sees after its first minutes: every worker has answered the
        # page once. Without this the first wave of the first row would measure misses.
        wrk(warm.url + widget_path, max(levels), 2)
        wrk(warm.url + "/v1/packages", max(levels), 2, header=key_header)

        rows = []
        for n, concurrency in enumerate(levels):
            baseline = wrk(bare.url + "/bare", concurrency, args.seconds)
            planned = {
                "widget catalog, cache cold": lambda c=concurrency, n=n: wrk(
                    cold.url + widget_path, c, args.seconds
                ),
                "widget catalog, cache warm": lambda c=concurrency, n=n: wrk(
                    warm.url + widget_path, c, args.seconds
                ),
                "GET /v1/packages, cache cold": lambda c=concurrency, n=n: wrk(
                    cold.url + "/v1/packages", c, args.seconds, header=key_header
                ),
                "GET /v1/packages, cache warm": lambda c=concurrency, n=n: wrk(
                    warm.url + "/v1/packages", c, args.seconds, header=key_header
                ),
                "hold (Pay), distinct dates": lambda c=concurrency, n=n: wrk(
                    warm.url + f"/book/{first['slug']}/pay",
                    c,
                    args.seconds,
                    bodies=pay_files[n],
                ),
                "webhook checkout.session.completed": lambda c=concurrency, n=n: wrk(
                    warm.url + "/webhooks/stripe",
                    c,
                    args.seconds,
                    bodies=webhook_files[n],
                ),
            }
            runs = {"bare Flask route": baseline}
            for name, run in planned.items():
                if not only or any(word in name for word in only):
                    runs[name] = run()
            for name, figures in runs.items():
                rows.append(
                    (name, concurrency, figures, round(figures["rps"] / baseline["rps"], 3))
                )

        print(
            f"\n{'endpoint':38} {'c':>4} {'req/s':>8} {'ratio':>6} {'p50':>8} {'p95':>8} "
            f"{'p99':>8} {'non-2xx/3xx':>11}   CPU ms per request: app / postgres / redis / wrk"
        )
        for name, concurrency, f, ratio in rows:
            cpu = f["cpu_ms"]
            app_cpu = max(cpu["bare"], cpu["warm"], cpu["cold"])
            print(
                f"{name:38} {concurrency:>4} {f['rps']:>8} {ratio:>6} {f['p50_ms']:>7}ms "
                f"{f['p95_ms']:>7}ms {f['p99_ms']:>7}ms {f['non2xx3xx']:>11}   "
                f"{app_cpu:.2f} / {cpu['postgres']:.2f} / {cpu.get('redis', 0):.2f} / "
                f"{cpu['wrk']:.2f}"
            )
        print(
            "\nworker RSS (MiB): " + ", ".join(f"{s.name}: {s.worker_rss_mib()}" for s in servers)
        )
        (ROOT / "bench" / "results").mkdir(exist_ok=True)
        (ROOT / "bench" / "results" / "load.json").write_text(
            json.dumps(
                {
                    "rows": [
                        {"endpoint": r[0], "concurrency": r[1], **r[2], "ratio": r[3]} for r in rows
                    ],
                    "worker_rss_mib": {s.name: s.worker_rss_mib() for s in servers},
                },
                indent=2,
            )
        )
    finally:
        for server in servers:
            server.stop()
        cluster.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
