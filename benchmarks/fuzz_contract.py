"""The error-contract fuzzer's long run: ``python3 benchmarks/fuzz_contract.py --cases 10000``.

Draws ``--cases`` calls spread evenly over the functions of ``tests/fuzz_support.py`` (the same
strategies as ``tests/test_fuzz.py``, derandomized), runs each on ml_utilities and on librosa
and prints the outcome counts per class and per function, then every failing case.
Exit status 1 when any case fails the contract.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fuzz_support as fz  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10000, help="calls in all")
    parser.add_argument("--only", nargs="*", default=None, help="function names to fuzz")
    args = parser.parse_args()
    names = args.only or sorted(fz.SPECS)
    per_function = max(1, args.cases // len(names))
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    failures: list[str] = []
    start = time.perf_counter()
    for name in names:

        @settings(
            max_examples=per_function,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(fz.cases(name))
        def run(case: fz.Case) -> None:
            kind, detail = fz.run_case(case)
            counts[(case.name, kind)] += 1
            if kind in fz.FAILURES:
                failures.append(f"{kind}: {case.describe()} :: {detail[:300]}")

        t0 = time.perf_counter()
        run()
        done = sum(v for (n, _), v in counts.items() if n == name)
        print(f"{name:20s} {done:6d} cases {time.perf_counter() - t0:7.1f} s", flush=True)

    total = sum(counts.values())
    print(f"\n{total} cases in {time.perf_counter() - start:.0f} s\n\nper class:")
    by_class = collections.Counter()
    for (_, kind), value in counts.items():
        by_class[kind] += value
    for kind, value in sorted(by_class.items()):
        print(f"  {value:6d}  {kind}")
    print("\nper function:")
    for name in names:
        row = {k: v for (n, k), v in counts.items() if n == name}
        print(
            f"  {name}: "
            + ", ".join(f"{k.split(':')[0].split(',')[0]}={v}" for k, v in sorted(row.items()))
        )
    print(f"\n{len(failures)} failing cases")
    for line in failures[:200]:
        print("  " + line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
