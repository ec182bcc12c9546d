"""The serving schemes the figures compare, each as (how to start the server, what bench-serve adds
for a shared system prompt of L tokens):

  none        our cloud, --cache-mode none: every request prefills its whole prompt
              (PagedAttention as the RelayAttention paper ran it); the system prompt as text
  prefix      our cloud, --cache-mode prefix: automatic prefix caching of the system prompt text
  relay       our cloud, --cache-mode relay, the system prompt registered as a cloud prompt:
              its KV held once and attended by every request in one pass (RelayAttention)
  edgeprompt  E edges (bench-serve --edges) on a relay cloud: the cloud streams the prompt's KV
              once per edge, the edges compute the private parts and decode
  llama       llama.cpp's llama-server (its own prompt cache), the system prompt as text
"""
import contextlib

import common

ALL = ["none", "prefix", "relay", "edgeprompt", "llama"]


@contextlib.contextmanager
def server(scheme, args):
    if scheme == "llama":
        with common.llama_server(args.llama_server, args.llama_model or args.model,
                                 args.llama_port, args.llama_arg) as s:
            yield s
        return
    mode = {"none": "none", "prefix": "prefix", "relay": "relay", "edgeprompt": "relay"}[scheme]
    with common.cloud(args.binary, args.model, mode, args.cloud_arg) as s:
        yield s


def bench_args(scheme, args, system_len, tag):
    """bench-serve's options for the shared system prompt under `scheme`."""
    out = ["--system-prompt-len", system_len]
    if scheme in ("relay", "edgeprompt"):
        out += ["--cloud-prompt", f"sys-{tag}", "--register-cloud-prompt"]
    if scheme == "edgeprompt":
        out += ["--edges", args.edges, "--edge-model", args.edge_model or args.model,
                "--edge-max-seqs", args.edge_max_seqs, "--edge-threads", args.edge_threads]
        out += [f"--edge-arg={a}" for a in args.edge_arg]
    return out


def add_options(ap):
    ap.add_argument("--binary", default=str(common.DEFAULT_BINARY))
    ap.add_argument("--model", default=str(common.DEFAULT_MODEL), help="the cloud's model")
    ap.add_argument("--tokenizer", help="counts lengths (default: the model)")
    ap.add_argument("--schemes", default="none,prefix,relay",
                    help=f"comma-separated, of {','.join(ALL)}")
    ap.add_argument("--cloud-arg", action="append", default=[],
                    help="one more argument for the cloud (e.g. --cloud-arg=--device=cuda)")
    ap.add_argument("--edges", type=int, default=1, help="edgeprompt: edge processes")
    ap.add_argument("--edge-model", help="edgeprompt: the edges' model (default: --model)")
    ap.add_argument("--edge-max-seqs", type=int, default=16)
    ap.add_argument("--edge-threads", type=int, default=1)
    ap.add_argument("--edge-arg", action="append", default=[])
    ap.add_argument("--llama-server", help="llama: path of llama-server")
    ap.add_argument("--llama-model", help="llama: its GGUF (default: --model)")
    ap.add_argument("--llama-port", type=int, default=18090)
    ap.add_argument("--llama-arg", action="append", default=[],
                    help="llama: one more argument (e.g. --llama-arg=-ngl=99)")
    ap.add_argument("--dataset", default="random", help="random, or a ShareGPT JSON file")
    ap.add_argument("--input-len", type=int, default=128, help="random: private prompt tokens")
    ap.add_argument("--output-len", type=int, default=128, help="random: output tokens")
    ap.add_argument("--seed", type=int, default=0)


def workload_args(args):
    out = ["--ignore-eos", "--seed", args.seed, "--tokenizer", args.tokenizer or args.model]
    if args.dataset == "random":
        out += ["--dataset", "random", "--random-input-len", args.input_len,
                "--random-output-len", args.output_len]
    else:
        out += ["--dataset", "sharegpt", args.dataset]
    return out
