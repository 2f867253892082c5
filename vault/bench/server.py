"""``python -m vault.bench.server``: serve the benchmark app as ``vault serve`` serves the product.

Only ``vault bench api`` starts this, on a throw-away data directory (see
:mod:`vault.bench.shapes`). The settings come from the environment, as ``vault serve``'s do.
"""

from __future__ import annotations

import argparse

from vault.cli.serve import serve_app
from vault.config import get_settings

BENCH_FACTORY = "vault.bench.app:create_served_bench_app"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    serve_app(get_settings(), factory=BENCH_FACTORY, workers=args.workers)


if __name__ == "__main__":
    main()
