"""``make bench``: every benchmark, one after the other (each also runs on its own).

.venv/bin/python -m bench.booking   # date-lock overhead and confirmation throughput
.venv/bin/python -m bench.widget    # the widget's catalog step against a bare route
.venv/bin/python -m bench.load      # every endpoint under wrk at 10/50/100 clients
.venv/bin/python -m bench.scale     # pages and jobs on 10 tenants against 10,000 (minutes)
"""

import subprocess
import sys

for module in ("bench.booking", "bench.widget", "bench.load", "bench.scale"):
    print(f"\n=== {module}", flush=True)
    subprocess.run([sys.executable, "-m", module], check=True)
