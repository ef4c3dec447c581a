"""The Python worker runtime is pinned exactly, and the pin is the version the tests run on.

On Python 3.13+ the app brings its own worker (`azure-functions-runtime`, "runtime version
control"); Microsoft recommends an exact pin for production so a deployment never picks up a
new worker unannounced. The suite runs on the installed worker, so the pin must equal it.
"""

from __future__ import annotations

from importlib.metadata import version

from packaging.requirements import Requirement

from infra_bicep_reader import REPO

PINNED = "azure-functions-runtime"


def requirements(text: str) -> dict[str, Requirement]:
    """Requirement lines of a requirements file by normalised name (comments and options skipped)."""
    out: dict[str, Requirement] = {}
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            req = Requirement(line)
            out[req.name.lower().replace("_", "-")] = req
    return out


def exact_pin(req: Requirement) -> str | None:
    """The version of a `name==X.Y.Z` requirement; None for ranges, wildcards or several clauses."""
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
        return specs[0].version
    return None


def test_worker_runtime_is_pinned_exactly_to_the_installed_version() -> None:
    reqs = requirements((REPO / "requirements.txt").read_text(encoding="utf-8"))
    assert PINNED in reqs, f"{PINNED} missing from requirements.txt"
    pin = exact_pin(reqs[PINNED])
    assert pin is not None, f"requirements.txt: pin {PINNED} exactly (==X.Y.Z), not {reqs[PINNED].specifier}"
    assert pin == version(PINNED), f"requirements.txt pins {PINNED}=={pin}, the tests run on {version(PINNED)}"


def test_exact_pin_rejects_ranges_and_wildcards() -> None:
    assert exact_pin(Requirement("a==1.3.0")) == "1.3.0"
    assert exact_pin(Requirement("a>=1.3,<2")) is None
    assert exact_pin(Requirement("a==1.*")) is None
    assert exact_pin(Requirement("a==1.3.0,!=1.2")) is None
