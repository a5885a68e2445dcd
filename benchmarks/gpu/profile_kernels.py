"""Where the CUDA backend's time goes: each pipeline of the device benchmark on a batch of
30 s clips, under torch.profiler (CUPTI sees every kernel in the process, ours and cuFFT's),
printed as one table per pipeline sorted by device time.

    python benchmarks/gpu/profile_kernels.py [--batch 512] [--rows 25]

``--per-feature`` times each output of the full set alone (one plan per output: the FFT is paid
each time); ``--once NAME`` runs one pipeline once, as a target for Nsight Compute.
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--only", default="", help="comma-separated pipeline names")
    parser.add_argument("--per-feature", action="store_true")
    parser.add_argument("--once", default="")
    args = parser.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile

    from ml_utilities.bench import synthetic_clip
    from ml_utilities.gpu.bench import SR, _pipelines

    device = torch.device("cuda", torch.cuda.current_device())
    base = torch.from_numpy(synthetic_clip(seconds=30.0)).to(device)
    scale = torch.linspace(0.5, 1.5, args.batch, device=device)[:, None]
    y = (base[None, :] * scale).contiguous()
    hours = args.batch * 30.0 / 3600.0
    print(f"{torch.cuda.get_device_name(device)}; batch {args.batch} x 30 s at {SR} Hz")
    pipelines = _pipelines(torch, device)
    if args.once:
        pipelines[args.once][0](y)
        torch.cuda.synchronize(device)
        return
    if args.per_feature:
        _per_feature(torch, device, y, hours)
        return
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    for name, (fn, kind) in pipelines.items():
        if kind == "missing" or (only and name not in only):
            continue
        for _ in range(2):
            fn(y)
        torch.cuda.synchronize(device)
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(y)
        stop.record()
        torch.cuda.synchronize(device)
        ms = start.elapsed_time(stop)
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn(y)
            torch.cuda.synchronize(device)
        print(f"\n=== {name}: {ms:.3f} ms, {hours / (ms / 1e3):.1f} h of audio/s")
        table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=args.rows)
        print(table)


def _per_feature(torch, device, y, hours: float) -> None:  # noqa: ANN001
    from ml_utilities.gpu import features

    def timed(fn) -> float:  # noqa: ANN001
        for _ in range(2):
            fn()
        torch.cuda.synchronize(device)
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        times = []
        for _ in range(3):
            start.record()
            fn()
            stop.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(stop))
        return float(np.median(times))

    cases = [(name, {}) for name in features.FULL_SET] + [("chroma", {"tuning": 0.0})]
    cases.append(("spectrum", {}))
    for name, extra in cases:
        ms = timed(
            lambda n=name, e=extra: features.extract_features(y, features=[n], n_mfcc=13, **e)
        )
        label = name + (" (tuning given)" if extra else "")
        print(f"{label:28s} {ms:9.3f} ms  {hours / (ms / 1e3):8.1f} h/s")


if __name__ == "__main__":
    main()
