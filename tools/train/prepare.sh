#!/usr/bin/env bash
# Prepares everything the GPU training needs, on any Debian machine with the project built:
# the corpus (tools/train/make_corpus.py), the SentencePiece tokenizer (spm_train), and the
# token ids of the training and held-out text, produced by our own tokenizer so that training
# sees exactly what the engine feeds the model. Deterministic: same packages, same output.
#
#   tools/train/prepare.sh OUT_DIR [EDGEPROMPT_BINARY]
set -euo pipefail
out=${1:?usage: prepare.sh OUT_DIR [EDGEPROMPT_BINARY]}
bin=${2:-build/edgeprompt}
here=$(cd "$(dirname "$0")" && pwd)
for cmd in bible spm_train; do
  command -v $cmd >/dev/null || { echo "prepare.sh: $cmd missing (apt-get install bible-kjv sentencepiece)" >&2; exit 1; }
done
mkdir -p "$out/tokenizer" "$out/data"
/usr/bin/python3 "$here/make_corpus.py" "$out/corpus" >/dev/null

spm_train --input="$out/corpus/spm_text.txt" --model_prefix="$out/tokenizer/tokenizer" \
  --vocab_size=4096 --model_type=bpe --byte_fallback=true --normalization_rule_name=identity \
  --remove_extra_whitespaces=false --split_digits=true --allow_whitespace_only_pieces=true \
  --user_defined_symbols='<|im_start|>,<|im_end|>' --character_coverage=0.9995 \
  --input_sentence_size=2000000 --shuffle_input_sentence=true --random_seed=1 \
  --max_sentence_length=8192 --num_threads=2 >"$out/tokenizer/spm_train.log" 2>&1
rm -f "$out/tokenizer/tokenizer.vocab"
cp "$here/tokenizer_config.json" "$out/tokenizer/"

# Training and held-out chat streams hold <s>, </s> and ChatML markers as text: parse them.
tokenize() {  # FILE OUT [flags...]
  local file=$1 dest=$2
  shift 2
  "$bin" tokenize -m "$out/tokenizer" --file "$file" "$@" |
    /usr/bin/python3 -c 'import array, json, sys
ids = json.load(sys.stdin)
assert max(ids) < 65536
array.array("H", ids).tofile(open(sys.argv[1], "wb"))
print(f"{sys.argv[1]}: {len(ids)} tokens")' "$dest"
}
tokenize "$out/corpus/train.txt" "$out/data/train_ids.u16" --parse-special --no-bos
tokenize "$out/corpus/heldout_chat.txt" "$out/data/heldout_chat_ids.u16" --parse-special --no-bos
# Held-out text as `edgeprompt perplexity` reads it: plain text, BOS first.
tokenize "$out/corpus/heldout.txt" "$out/data/heldout_ids.u16"
cp "$out/corpus/stats.json" "$out/data/"
