#!/usr/bin/env python3
"""Fig. 3a/3b: offline throughput (req/s, every request sent at t = 0) against the length of the
shared system prompt, for each scheme (schemes.py).

  Fig. 3a (cloud): --schemes none,prefix,relay,llama on the GPU cloud (--cloud-arg=--device=cuda)
  Fig. 3b (edge):  --schemes edgeprompt with the edges where the model runs for the user

    python3 bench/experiments/fig3_system_prompt.py --name fig3a --schemes none,prefix,relay \\
        --model M.gguf --cloud-arg=--device=cuda --num-prompts 1000
    python3 bench/experiments/fig3_system_prompt.py --smoke    # seconds, on the CPU, tiny model
"""
import argparse
import tempfile
import pathlib

import common
import schemes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    schemes.add_options(ap)
    ap.add_argument("--name", default="fig3a")
    ap.add_argument("--system-lens", default="64,256,512,1024,2048")
    ap.add_argument("--num-prompts", type=int, default=1000)
    ap.add_argument("--max-concurrency", type=int, default=0)
    ap.add_argument("--smoke", action="store_true",
                    help="a tiny run to check the script: 8 requests, short prompts, CPU")
    args = ap.parse_args()
    if args.smoke:
        args.system_lens, args.num_prompts = "16,64", 8
        args.input_len, args.output_len = 16, 4
        args.name += "-smoke"
        common.RESULTS = pathlib.Path(tempfile.mkdtemp(prefix="ep-smoke-"))  # not results
    points = []
    work = common.RESULTS / args.name
    work.mkdir(parents=True, exist_ok=True)
    for scheme in args.schemes.split(","):
        with schemes.server(scheme, args) as srv:
            for L in map(int, args.system_lens.split(",")):
                extra = ["--max-concurrency", args.max_concurrency] if args.max_concurrency else []
                cmd, res = common.bench(
                    args.binary, srv.url,
                    ["--request-rate", "inf", "--num-prompts", args.num_prompts, *extra,
                     *schemes.workload_args(args), *schemes.bench_args(scheme, args, L, L)],
                    work / f"{scheme}-{L}.json")
                points.append(common.point(cmd, res, scheme=scheme, system_prompt_len=L))
    common.write_figure(args.name, {"x": "system_prompt_len", "y": "request_throughput"}, points)


if __name__ == "__main__":
    main()
