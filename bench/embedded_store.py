"""Measure our repository-level operations on the embedded store vs mongomock.

Run: `python -m bench.embedded_store [--docs 10000]`. Prints a Markdown table.
A developer tool (not imported by the app); mongomock is a test dependency.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any


def _time(fn: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def measure(db: Any, docs: int) -> dict[str, float]:
    import pymongo

    coll = db["bench"]
    coll.drop()
    coll.create_index("email", unique=True)
    coll.create_index([("owner_id", 1), ("created_at", -1)])
    base = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [{"email": f"user{i}@example.com", "owner_id": f"o{i % 100}", "n": i,
             "created_at": base + timedelta(seconds=i), "version": 1} for i in range(docs)]
    out: dict[str, float] = {}
    with pymongo.timeout(600):
        t = time.perf_counter()
        for start in range(0, docs, 1000):
            coll.insert_many(rows[start:start + 1000], ordered=False)
        out["insert_many (total)"] = (time.perf_counter() - t) * 1000
        print(f"  insert_many done in {out['insert_many (total)']:.0f} ms", flush=True)
        k = iter(range(10**9))
        out["find_one by unique field"] = _time(lambda: coll.find_one({"email": f"user{next(k) * 97 % docs}@example.com"}), 50)
        out["find owner+sort+limit 20"] = _time(
            lambda: list(coll.find({"owner_id": "o7"}).sort([("created_at", -1), ("_id", -1)]).limit(20)), 20)
        j = iter(range(10**9))
        out["update_one by unique field"] = _time(
            lambda: coll.update_one({"email": f"user{next(j) * 31 % docs}@example.com"},
                                    {"$set": {"x": 1}, "$inc": {"version": 1}}), 50)
        out["insert_one (into full coll)"] = _time(
            lambda: coll.insert_one({"email": f"new{time.perf_counter_ns()}@example.com", "owner_id": "o1"}), 10)
        out["count_documents by owner"] = _time(lambda: coll.count_documents({"owner_id": "o3"}), 10)
    coll.drop()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=10_000)
    args = parser.parse_args(argv)

    import mongomock

    from shared.config.models import Settings
    from shared.data.client import create_client
    from shared.data.embedded import EmbeddedMongoServer

    results: dict[str, dict[str, float]] = {}
    print("measuring mongomock...", flush=True)
    results["mongomock"] = measure(mongomock.MongoClient(tz_aware=True)["bench"], args.docs)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongoServer(tmp) as server:
        client = create_client(server.uri, Settings(), retryWrites=False)
        try:
            results["embedded (mongoeco SQLite via wire)"] = measure(client["bench"], args.docs)
        finally:
            client.close()
    names = list(results)
    print(f"| operation ({args.docs} docs, ms, median) | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for op in results[names[0]]:
        print(f"| {op} | " + " | ".join(f"{results[n][op]:.2f}" for n in names) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
