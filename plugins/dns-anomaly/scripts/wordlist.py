"""Writes tests/fixtures/dga/words.txt: common words of English and seven
other Latin-script languages, the lexicon the DGA model segments labels
with (a label made of words is rarely generated, except by the dictionary
families, whose words the model then learns).

    python3 -m venv .venv && .venv/bin/pip install wordfreq==3.1.1
    .venv/bin/python plugins/dns-anomaly/scripts/wordlist.py

Word frequencies: wordfreq 3.1.1 (Robyn Speer et al., data CC BY-SA 4.0).
"""

import pathlib
import re

import wordfreq

# Words per language, most frequent first.
LANGUAGES = {"en": 25000, "de": 4000, "es": 4000, "fr": 4000, "it": 4000,
             "pt": 4000, "nl": 4000, "id": 4000}
WORD = re.compile(r"^[a-z]{3,12}$")

words = set()
for lang, n in LANGUAGES.items():
    words.update(w for w in wordfreq.top_n_list(lang, n) if WORD.match(w))

out = pathlib.Path(__file__).resolve().parents[3] / "tests/fixtures/dga/words.txt"
out.write_text("".join(w + "\n" for w in sorted(words)))
print(f"{len(words)} words -> {out}")
