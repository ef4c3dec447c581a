"""The floor every throughput figure is divided by: FastAPI + uvicorn returning a small JSON body.

Served exactly like the local host (same uvicorn, same defaults: no access log, warning level), so a
ratio compares our request path with the framework's own, on the same machine in the same run.
Run: ``python -m bench.trivial_app PORT``.
"""

from __future__ import annotations

import sys

from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, object]:
    return {"status": "ok", "symbol": "AAPL", "price": 123.45, "currency": "USD"}


def main() -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
