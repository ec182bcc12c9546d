#!/usr/bin/python3
"""Builds the training corpus of the default model from text that Debian packages ship.

Sources (see models/README.md for licences): the King James Bible (packages bible-kjv and
bible-kjv-text, read through the `bible` program), the fortune cookie files (package fortunes)
and the WordNet glosses (package wordnet-base).

Writes into OUT:
  spm_text.txt      plain text of the training documents, for training the tokenizer
  train.txt         the training stream: every document as <s>text</s>, chat documents in ChatML
  heldout.txt       held-out plain English (Bible chapters and fortunes), for perplexity
  heldout_chat.txt  held-out chat documents (dictionary, verses, fortunes), same format as train.txt
  stats.json        document and byte counts per source

A document is held out when a hash of its key falls in 1 of 50 buckets, so the split is stable
when sources are added. Only the standard library is used; the output is deterministic.
"""
import argparse
import glob
import hashlib
import json
import os
import random
import re
import subprocess

BOOKS = [
    "Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy", "Joshua", "Judges", "Ruth",
    "1 Samuel", "2 Samuel", "1 Kings", "2 Kings", "1 Chronicles", "2 Chronicles", "Ezra",
    "Nehemiah", "Esther", "Job", "Psalms", "Proverbs", "Ecclesiastes", "Song of Solomon",
    "Isaiah", "Jeremiah", "Lamentations", "Ezekiel", "Daniel", "Hosea", "Joel", "Amos",
    "Obadiah", "Jonah", "Micah", "Nahum", "Habakkuk", "Zephaniah", "Haggai", "Zechariah",
    "Malachi", "Matthew", "Mark", "Luke", "John", "Acts", "Romans", "1 Corinthians",
    "2 Corinthians", "Galatians", "Ephesians", "Philippians", "Colossians", "1 Thessalonians",
    "2 Thessalonians", "1 Timothy", "2 Timothy", "Titus", "Philemon", "Hebrews", "James",
    "1 Peter", "2 Peter", "1 John", "2 John", "3 John", "Jude", "Revelation",
]

# Fortune files left out: pictures made of characters, and files of mostly non-English text.
FORTUNE_SKIP = {"ascii-art", "translate-me"}

DICTIONARY_SYSTEMS = [
    "You are a dictionary. Explain the word the user asks about in one sentence.",
    "You are a helpful dictionary. Give the meaning of the word the user asks about.",
    "Answer as a dictionary would: the part of speech, then the meaning.",
]
DICTIONARY_QUESTIONS = ['What does "{w}" mean?', "Define {w}.", "What is the meaning of {w}?",
                        "{w}"]
VERSE_SYSTEMS = ["You quote the King James Bible.",
                 "You are a Bible reader. Recite the verse the user names."]
VERSE_QUESTIONS = ["Quote {ref}.", "{ref}", "What does {ref} say?"]
FORTUNE_SYSTEMS = ["You are a fortune cookie. Reply with one saying about the user's topic.",
                   "Reply with a short saying or joke about what the user names."]
FORTUNE_QUESTIONS = ["Tell me something about {w}.", "A saying about {w}, please.", "{w}"]
POS = {"n": "noun", "v": "verb", "a": "adjective", "s": "adjective", "r": "adverb"}
STOP = set("""about above after again against among because before being below between both
could does doing down during each from further have having here itself more most other ought
over same shall should some such than that their theirs them themselves then there these they
this those through under until very were what when where which while whom with would your yours
yourself unto thee thou thine shalt hath said upon into""".split())


def held_out(key):
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 50 == 0


def chatml(system, user, answer):
    return (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            f"<|im_start|>assistant\n{answer}<|im_end|>\n")


def bible_verses():
    out = subprocess.run(["bible", "-f", "Ge1:1-Rev22:21"], check=True, capture_output=True,
                         text=True).stdout
    verses, abbrevs = [], []
    for line in out.splitlines():
        m = re.match(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$", line)
        if not m:
            continue
        if not abbrevs or abbrevs[-1] != m.group(1):
            abbrevs.append(m.group(1))
        verses.append((BOOKS[len(abbrevs) - 1], int(m.group(2)), int(m.group(3)),
                       m.group(4).strip()))
    if len(abbrevs) != len(BOOKS):
        raise SystemExit(f"expected {len(BOOKS)} books from `bible`, got {len(abbrevs)}")
    return verses


def fortunes():
    for path in sorted(glob.glob("/usr/share/games/fortunes/*")):
        name = os.path.basename(path)
        if "." in name or name in FORTUNE_SKIP or os.path.isdir(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for i, entry in enumerate(text.split("\n%\n")):
            entry = entry.strip("\n%").replace("\t", "    ").rstrip()
            if entry and "\ufffd" not in entry:
                yield f"{name}/{i}", entry


def wordnet(rng):
    """Dictionary entries: the most frequent sense of every word seen in WordNet's sense-tagged
    texts (common words), and a sample of 15 % of the other synsets."""
    files = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}
    for name, pos_letter in files.items():
        with open(f"/usr/share/wordnet/data.{name}", encoding="utf-8") as f:
            data = f.read()
        common = {}
        with open(f"/usr/share/wordnet/index.{name}", encoding="utf-8") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                fields = line.split()
                n_ptr = int(fields[3])
                tagged = int(fields[5 + n_ptr])
                if tagged > 0:
                    common.setdefault(int(fields[6 + n_ptr]), fields[0])
        pos = 0
        while pos < len(data):
            end = data.index("\n", pos)
            line, offset, pos = data[pos:end], pos, end + 1
            if line.startswith("  "):
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            word = common.get(offset)
            if word is None:
                if rng.random() >= 0.15:
                    continue
                word = fields[4]
            word = re.sub(r"\(.*\)$", "", word.replace("_", " "))
            definition = gloss.split('; "')[0].strip().rstrip(";").strip()
            examples = re.findall(r'"([^"]+)"', gloss)
            if definition:
                yield f"wn/{fields[0]}/{pos_letter}", word, POS[fields[2]], definition, examples


def topic_word(text, rng):
    words = [w for w in re.findall(r"[A-Za-z]{5,}", text) if w.lower() not in STOP]
    return rng.choice(words).lower() if words else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)

    train, heldout_text, heldout_chat, spm_text = [], [], [], []
    stats = {}

    def add(kind, key, text, chat):
        stats.setdefault(kind, [0, 0])
        stats[kind][0] += 1
        stats[kind][1] += len(text.encode())
        if held_out(key):
            (heldout_chat if chat else heldout_text).append(text)
        else:
            train.append(text)
            if not chat:
                spm_text.append(text)

    verses = bible_verses()
    chapters = {}
    for book, c, v, text in verses:
        chapters.setdefault((book, c), []).append(f"{v} {text}")
    for (book, c), lines in chapters.items():
        add("bible", f"kjv/{book}/{c}", f"{book} {c}\n" + "\n".join(lines), chat=False)
    for book, c, v, text in rng.sample(verses, 6000):
        ref = f"{book} {c}:{v}"
        add("bible_chat", f"kjv/{book}/{c}",
            chatml(rng.choice(VERSE_SYSTEMS), rng.choice(VERSE_QUESTIONS).format(ref=ref), text),
            chat=True)

    for key, entry in fortunes():
        add("fortunes", key, entry, chat=False)
        word = topic_word(entry, rng)
        if word and len(entry) < 400 and rng.random() < 0.5:
            add("fortune_chat", key,
                chatml(rng.choice(FORTUNE_SYSTEMS), rng.choice(FORTUNE_QUESTIONS).format(w=word),
                       entry), chat=True)

    for key, word, pos, definition, examples in wordnet(rng):
        answer = f"{word} ({pos}): {definition}."
        if examples:
            answer += f' For example: "{examples[0]}".'
        add("dictionary_chat", key,
            chatml(rng.choice(DICTIONARY_SYSTEMS), rng.choice(DICTIONARY_QUESTIONS).format(w=word),
                   answer), chat=True)
        spm_text.append(answer)

    rng.shuffle(train)
    with open(os.path.join(args.out, "train.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"<s>{d}</s>" for d in train))
    with open(os.path.join(args.out, "heldout.txt"), "w", encoding="utf-8") as f:
        f.write("\n\n".join(heldout_text) + "\n")
    with open(os.path.join(args.out, "heldout_chat.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"<s>{d}</s>" for d in heldout_chat))
    with open(os.path.join(args.out, "spm_text.txt"), "w", encoding="utf-8") as f:
        # spm_train reads one sentence per line: paragraphs become lines.
        f.write("\n".join(line for d in spm_text for line in d.splitlines() if line.strip()))
    stats = {k: {"documents": v[0], "bytes": v[1]} for k, v in stats.items()}
    stats["train_documents"] = len(train)
    stats["heldout_text_bytes"] = sum(len(t.encode()) + 2 for t in heldout_text)
    with open(os.path.join(args.out, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
    print(json.dumps(stats, indent=1))


if __name__ == "__main__":
    main()
