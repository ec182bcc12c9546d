#!/usr/bin/env python3
"""Fig. 4 and Fig. 5: request throughput and latency against the request rate (Poisson arrivals),
1000 requests, a shared cloud prompt of 512 or 1024 tokens, for each scheme (schemes.py).

Fig. 4 plots request_throughput; Fig. 5 the normalised latency (s/token: the mean over requests
of E2EL / output tokens, as the vLLM paper defines it) and TTFT / TPOT p50 and p99. One run
gives both: the figure JSON holds every metric of every point.

    python3 bench/experiments/fig45_request_rate.py --schemes none,prefix,relay \\
        --model M.gguf --cloud-arg=--device=cuda --rates 1,2,4,8,16,32 --system-lens 512,1024
    python3 bench/experiments/fig45_request_rate.py --smoke
"""
import argparse
import pathlib
import tempfile
import json

import common
import schemes


def normalised_latency(result_file):
    """Mean over completed requests of E2EL / output tokens, in seconds per token."""
    reqs = json.loads(result_file.read_text())["requests"]
    v = [r["e2el"] / r["output_len"] for r in reqs if not r["error"] and r["output_len"] > 0]
    return sum(v) / len(v) if v else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    schemes.add_options(ap)
    ap.add_argument("--name", default="fig45")
    ap.add_argument("--rates", default="1,2,4,8,16,32", help="requests per second")
    ap.add_argument("--system-lens", default="512,1024")
    ap.add_argument("--num-prompts", type=int, default=1000)
    ap.add_argument("--max-concurrency", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="a tiny run to check the script")
    args = ap.parse_args()
    if args.smoke:
        args.rates, args.system_lens, args.num_prompts = "20,80", "32", 8
        args.input_len, args.output_len = 16, 4
        args.name += "-smoke"
        common.RESULTS = pathlib.Path(tempfile.mkdtemp(prefix="ep-smoke-"))  # not results
    work = common.RESULTS / args.name
    work.mkdir(parents=True, exist_ok=True)
    points = []
    for scheme in args.schemes.split(","):
        with schemes.server(scheme, args) as srv:
            for L in map(int, args.system_lens.split(",")):
                for rate in args.rates.split(","):
                    extra = ["--max-concurrency", args.max_concurrency] if args.max_concurrency else []
                    out = work / f"{scheme}-{L}-{rate}.json"
                    cmd, res = common.bench(
                        args.binary, srv.url,
                        ["--request-rate", rate, "--num-prompts", args.num_prompts, *extra,
                         *schemes.workload_args(args), *schemes.bench_args(scheme, args, L, L)],
                        out)
                    p = common.point(cmd, res, scheme=scheme, system_prompt_len=L,
                                     request_rate=float(rate))
                    p["normalised_latency_s_per_token"] = normalised_latency(out)
                    points.append(p)
    common.write_figure(args.name, {"x": "request_rate",
                                    "y": ["request_throughput", "normalised_latency_s_per_token",
                                          "median_ttft_ms", "p99_ttft_ms", "median_tpot_ms",
                                          "p99_tpot_ms"]}, points)


if __name__ == "__main__":
    main()
