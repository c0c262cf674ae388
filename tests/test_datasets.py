"Heavier dataset checks (03_datasets): the embedded corpus end to end, determinism, local files, errors, token ids and Hub ids."
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import save_file

import gptnb.datasets as datasets
from gptnb.datasets import (check_dataset, check_token_ids, check_tokenizer, iter_documents, load_manifest, load_tokens,
                            prepare_token_dataset, save_tokens, validation_documents)
from gptnb.tokenizer import ENDOFTEXT, get_tokenizer


# ---------------------------------------------------------------- the embedded corpus, end to end

@pytest.fixture(scope="module")
def embedded_docs():
    return list(iter_documents("embedded"))


@pytest.fixture(scope="module", params=[None, 8192], ids=["gpt2", "bpe8192"])
def embedded(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("embedded") / "ds"
    prepare_token_dataset("embedded", out, vocab_size=request.param)
    return out, get_tokenizer(request.param)


def test_embedded_corpus_size(embedded_docs, embedded):
    out, enc = embedded
    m = load_manifest(out)
    assert len(embedded_docs) == len(set(embedded_docs)) > 400
    assert m["splits"]["train"]["documents"] + m["splits"]["validation"]["documents"] == len(embedded_docs)
    if enc.name == "gpt2":
        total = m["splits"]["train"]["tokens"] + m["splits"]["validation"]["tokens"]
        assert 650_000 < total < 950_000 and m["splits"]["train"]["tokens"] >= 500_000
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())


def test_embedded_tokens_decode_to_the_cleaned_text(embedded_docs, embedded):
    out, enc = embedded
    m = load_manifest(out)
    val = set(validation_documents(len(embedded_docs), 0.1, 0).tolist())
    for split, keep in (("train", lambda i: i not in val), ("validation", lambda i: i in val)):
        tokens = load_tokens(out / f"{split}.safetensors")
        assert tokens.dtype == np.uint16 and len(tokens) == m["splits"][split]["tokens"]
        assert int(tokens.max()) < enc.n_vocab
        expected = "".join(doc + ENDOFTEXT for i, doc in enumerate(embedded_docs) if keep(i))
        assert enc.decode(tokens.tolist()) == expected
        assert int((tokens == enc.eot_token).sum()) == m["splits"][split]["documents"]


def test_splits_share_no_document(embedded):
    out, enc = embedded
    def docs(split):
        return set(enc.decode(load_tokens(out / f"{split}.safetensors").tolist()).split(ENDOFTEXT)[:-1])
    train, val = docs("train"), docs("validation")
    assert train and val and not train & val


def test_embedded_is_deterministic_and_idempotent(embedded, tmp_path):
    out, enc = embedded
    vocab = None if enc.name == "gpt2" else enc.n_vocab
    again = prepare_token_dataset("embedded", tmp_path / "again", vocab_size=vocab)
    for name in ("train.safetensors", "validation.safetensors", "manifest.json"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert prepare_token_dataset("embedded", out, vocab_size=vocab) == out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps   # a complete dataset is not rewritten
    check_tokenizer(out, enc)
    other = get_tokenizer(8192 if vocab is None else None)
    with pytest.raises(ValueError) as err: check_tokenizer(out, other)
    assert enc.name in str(err.value) and other.name in str(err.value)


def test_default_out_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("GPTNB_DATA_DIR", str(tmp_path))
    assert datasets.default_data_dir() == tmp_path
    (tmp_path / "a.txt").write_text("one document")
    (tmp_path / "b.txt").write_text("another document")
    out = prepare_token_dataset([tmp_path / "a.txt", tmp_path / "b.txt"], vocab_size=8192, val_fraction=0.5)
    assert out.parent == tmp_path and out.name.startswith("a-") and out.name.endswith("-gpt2-bpe8192")
    monkeypatch.delenv("GPTNB_DATA_DIR")
    assert datasets.default_data_dir() == datasets.Path.home() / ".cache" / "gptnb"


# ---------------------------------------------------------------- local files

def test_parquet_jsonl_txt_prepare(tmp_path):
    texts = [f"Row {i}: " + "word " * (i % 7) + ("<|endoftext|> inside the text" if i == 5 else "") for i in range(60)]
    pq.write_table(pa.table({"id": list(range(40)), "text": texts[:40]}), tmp_path / "shard.parquet",
                   row_group_size=7)
    with open(tmp_path / "more.jsonl", "w") as f:
        for t in texts[40:59]: f.write(json.dumps({"text": t, "url": "x"}) + "\n")
    (tmp_path / "last.txt").write_text(texts[59])
    files = [tmp_path / "shard.parquet", tmp_path / "more.jsonl", tmp_path / "last.txt"]
    assert list(iter_documents(files)) == [t.strip() for t in texts]
    out = prepare_token_dataset(files, tmp_path / "ds", val_fraction=0.2, split_seed=11)
    m, enc = load_manifest(out), get_tokenizer()
    val = set(validation_documents(60, 0.2, 11).tolist())
    assert (m["splits"]["train"]["documents"], m["splits"]["validation"]["documents"]) == (48, 12)
    for split, keep in (("train", lambda i: i not in val), ("validation", lambda i: i in val)):
        tokens = load_tokens(out / f"{split}.safetensors").tolist()
        assert enc.decode(tokens) == "".join(t.strip() + ENDOFTEXT for i, t in enumerate(texts) if keep(i))
        # a literal "<|endoftext|>" in a document is text, not a boundary
        assert tokens.count(enc.eot_token) == m["splits"][split]["documents"]
    assert [f["name"] for f in m["source"]["files"]] == ["shard.parquet", "more.jsonl", "last.txt"]
    # a changed source file means a new preparation
    pq.write_table(pa.table({"text": texts[:39]}), tmp_path / "shard.parquet")
    prepare_token_dataset(files, tmp_path / "ds", val_fraction=0.2, split_seed=11)
    assert load_manifest(out)["splits"]["train"]["documents"] + load_manifest(out)["splits"]["validation"]["documents"] == 59


def test_interrupted_preparation_is_not_mistaken_for_complete(tmp_path, monkeypatch):
    for i in range(10): (tmp_path / f"{i}.txt").write_text(f"document number {i}")
    files = sorted(tmp_path.glob("*.txt"))
    out = prepare_token_dataset(files, tmp_path / "ds", vocab_size=8192)
    good = load_manifest(out)
    real = datasets._write_token_file
    def crash(path, *args):
        if path.name == "validation.safetensors": raise KeyboardInterrupt
        return real(path, *args)
    monkeypatch.setattr(datasets, "_write_token_file", crash)
    with pytest.raises(KeyboardInterrupt): prepare_token_dataset(files, out, vocab_size=8192, force=True)
    assert not (out / "manifest.json").exists()
    assert sorted(p.name for p in out.iterdir() if p.name != datasets.SHA256_CACHE) == ["train.safetensors", "validation.safetensors"]  # no temp files
    monkeypatch.setattr(datasets, "_write_token_file", real)
    with pytest.raises(FileNotFoundError, match="no manifest.json"): load_manifest(out)
    prepare_token_dataset(files, out, vocab_size=8192)
    assert load_manifest(out) == good


# ---------------------------------------------------------------- errors

def test_bad_sources(tmp_path):
    (tmp_path / "empty.txt").write_text("\n \n")
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "notext.jsonl").write_text('{"body": "x"}\n')
    (tmp_path / "data.csv").write_text("text\nx\n")
    pq.write_table(pa.table({"text": pa.array([None, "  "], pa.string())}), tmp_path / "empty.parquet")
    (tmp_path / "nothing").mkdir()
    cases = [("fineweb", ValueError, ["'fineweb'", "'embedded'", ".parquet"]),
             (tmp_path / "missing.parquet", FileNotFoundError, ["missing.parquet"]),
             (tmp_path / "data.csv", ValueError, ["data.csv", "'.csv'", ".jsonl"]),
             (tmp_path / "nothing", ValueError, ["nothing"]),
             ([], ValueError, ["empty list"]),
             (42, ValueError, ["42"])]
    for source, kind, words in cases:
        with pytest.raises(kind) as err: prepare_token_dataset(source, tmp_path / "ds")
        for w in words: assert w in str(err.value), (source, w, str(err.value))
    for name, word in (("empty.txt", "empty"), ("empty.jsonl", "empty"), ("notext.jsonl", "'body'"),
                       ("empty.parquet", "empty")):
        with pytest.raises(ValueError) as err: prepare_token_dataset(tmp_path / name, tmp_path / "ds")
        assert name in str(err.value) and word in str(err.value)
    assert not (tmp_path / "ds" / "manifest.json").exists()


@pytest.mark.parametrize("kwargs, word", [({"val_fraction": 0}, "val_fraction"), ({"val_fraction": 1.5}, "1.5"),
                                          ({"split_seed": -3}, "-3"), ({"vocab_size": 100}, "100")])
def test_bad_preparation_parameters(tmp_path, kwargs, word):
    (tmp_path / "a.txt").write_text("a"); (tmp_path / "b.txt").write_text("b")
    with pytest.raises(ValueError, match=word): prepare_token_dataset(tmp_path, tmp_path / "ds", **kwargs)


# ---------------------------------------------------------------- token ids against the model's vocabulary

@pytest.mark.parametrize("chunk", [1000, 1 << 24])
def test_an_id_equal_to_vocab_size_is_named_with_its_position(tmp_path, chunk):
    tokens = np.arange(60_000, dtype=np.int64) % 8192
    tokens[56_789], tokens[59_000] = 8192, 9000  # only the first bad id is reported
    path = tmp_path / "train.safetensors"
    save_tokens(path, tokens.astype(np.uint16))
    with pytest.raises(ValueError) as err: check_token_ids(path, 8192, chunk=chunk)
    msg = str(err.value)
    assert str(path) in msg and "token 8192 at position 56,789" in msg and "0..8191" in msg
    assert "9000" not in msg


def test_a_negative_id_is_named_with_its_position(tmp_path):
    path = tmp_path / "neg.safetensors"
    save_file({"tokens": torch.tensor([4, 0, 7, -1, 3, -5], dtype=torch.int32)}, path)
    with pytest.raises(ValueError) as err: check_token_ids(path, 50257, chunk=2)
    assert str(path) in str(err.value) and "token -1 at position 3" in str(err.value) and "0..50256" in str(err.value)


def test_a_dtype_that_cannot_hold_a_bad_id_is_not_scanned(tmp_path, monkeypatch):
    path = tmp_path / "u16.safetensors"
    save_tokens(path, np.array([0, 65535, 12], dtype=np.uint16))
    def no_reading(*args, **kwargs): raise AssertionError("the file was read although uint16 fits the vocabulary")
    monkeypatch.setattr(datasets, "_token_chunks", no_reading)
    info = check_token_ids(path, 65536)
    assert (info["tokens"], info["dtype"], info["scanned"]) == (3, "uint16", False)
    with pytest.raises(AssertionError): check_token_ids(path, 65535)  # one id fewer: it must be scanned


@pytest.mark.parametrize("chunk", [1, 3, 1 << 24])
def test_a_valid_file_returns_its_range(tmp_path, chunk):
    path = tmp_path / "ok.safetensors"
    save_file({"tokens": torch.tensor([5, 3, 9, 7, 4], dtype=torch.int64)}, path)
    info = check_token_ids(path, 10, chunk=chunk)
    assert info == {"path": str(path), "dtype": "int64", "tokens": 5, "scanned": True, "min": 3, "max": 9}


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "8192", None])
def test_check_token_ids_bad_vocab_size(tmp_path, bad):
    save_tokens(tmp_path / "t.safetensors", np.arange(5, dtype=np.uint16))
    with pytest.raises(ValueError) as err: check_token_ids(tmp_path / "t.safetensors", bad)
    assert "vocab_size" in str(err.value) and repr(bad) in str(err.value)


def post_style_dataset(folder, train, validation):
    "A dataset folder as the post publishes FineWeb: two token files and no manifest."
    folder.mkdir(parents=True, exist_ok=True)
    save_tokens(folder / "train.safetensors", np.asarray(train, dtype=np.uint16))
    save_tokens(folder / "validation.safetensors", np.asarray(validation, dtype=np.uint16))
    return folder


def test_check_dataset_accepts_a_post_style_folder(tmp_path):
    ds = post_style_dataset(tmp_path / "fineweb", np.arange(100) % 64, [1, 2, 63])
    checked = check_dataset(ds, 64)
    assert sorted(checked) == ["train", "validation"]
    assert (checked["train"]["tokens"], checked["train"]["min"], checked["train"]["max"]) == (100, 0, 63)
    assert checked["validation"]["path"] == str(ds / "validation.safetensors")


def test_check_dataset_names_a_bad_id_in_either_split(tmp_path):
    ds = post_style_dataset(tmp_path / "fineweb", np.arange(100) % 64, [1, 2, 64])
    with pytest.raises(ValueError) as err: check_dataset(ds, 64)
    assert str(ds / "validation.safetensors") in str(err.value) and "token 64 at position 2" in str(err.value)


def test_check_dataset_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as err: check_dataset(tmp_path / "nowhere", 8192)
    for word in (str(tmp_path / "nowhere"), "train.safetensors", "validation.safetensors", "tokens"):
        assert word in str(err.value)


def test_check_dataset_missing_split(tmp_path):
    ds = post_style_dataset(tmp_path / "fineweb", [1, 2, 3], [1, 2])
    (ds / "validation.safetensors").unlink()
    with pytest.raises(FileNotFoundError) as err: check_dataset(ds, 8192)
    assert str(ds / "validation.safetensors") in str(err.value)


@pytest.mark.parametrize("how", ["0 bytes", "0 tokens"])
def test_check_dataset_empty_split(tmp_path, how):
    ds = post_style_dataset(tmp_path / "fineweb", [1, 2, 3], [1, 2])
    if how == "0 bytes": (ds / "train.safetensors").write_bytes(b"")
    else: save_tokens(ds / "train.safetensors", np.zeros(0, dtype=np.uint16))
    with pytest.raises(ValueError) as err: check_dataset(ds, 8192)
    assert str(ds / "train.safetensors") in str(err.value) and "empty" in str(err.value)


def test_check_dataset_refuses_a_larger_manifest_vocabulary(tmp_path):
    for i in range(4): (tmp_path / f"{i}.txt").write_text(f"Document {i} is short. " * 5)
    ds = prepare_token_dataset(tmp_path, tmp_path / "ds", vocab_size=8192, val_fraction=0.25)
    m = load_manifest(ds)
    checked = check_dataset(ds, 8192)
    assert {s: checked[s]["tokens"] for s in ("train", "validation")} == {s: m["splits"][s]["tokens"] for s in ("train", "validation")}
    with pytest.raises(ValueError) as err: check_dataset(ds, 4096)
    assert "8192" in str(err.value) and "4096" in str(err.value) and str(ds) in str(err.value)


# ---------------------------------------------------------------- datasets by Hugging Face id
@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    "snapshot_download replaced by a stand-in that writes the requested split files and records its calls."
    hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("GPTNB_DATA_DIR", str(tmp_path / "cache"))
    calls = []

    def fake(repo_id, repo_type, local_dir, allow_patterns):
        calls.append({"repo_id": repo_id, "repo_type": repo_type, "local_dir": local_dir, "files": allow_patterns})
        os.makedirs(local_dir, exist_ok=True)
        for name in allow_patterns: save_tokens(os.path.join(local_dir, name), np.arange(50, dtype=np.uint16))
    monkeypatch.setattr(hub, "snapshot_download", fake)
    return calls


def test_a_hub_id_is_downloaded_once_into_the_cache(fake_hub, tmp_path, monkeypatch):
    folder = datasets.resolve_dataset_dir("hf:gpjt/fineweb-gpt2-tokens")
    assert folder == tmp_path / "cache" / "datasets" / "gpjt" / "fineweb-gpt2-tokens"
    assert fake_hub == [{"repo_id": "gpjt/fineweb-gpt2-tokens", "repo_type": "dataset", "local_dir": str(folder),
                         "files": ["train.safetensors", "validation.safetensors"]}]
    assert sorted(check_dataset(folder, 8192)) == ["train", "validation"]
    import huggingface_hub

    def no_network(*args, **kwargs): raise AssertionError("the second call must not download")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    assert datasets.resolve_dataset_dir("hf:gpjt/fineweb-gpt2-tokens") == folder


def test_a_hub_id_fetches_only_the_splits_asked_for(fake_hub):
    folder = datasets.resolve_dataset_dir("hf:gpjt/fineweb-gpt2-tokens", splits=("validation",))
    assert [c["files"] for c in fake_hub] == [["validation.safetensors"]]
    assert not (folder / "train.safetensors").exists()
    datasets.resolve_dataset_dir("hf:gpjt/fineweb-gpt2-tokens")   # the training split is fetched when it is wanted
    assert [c["files"] for c in fake_hub][-1] == ["train.safetensors", "validation.safetensors"]


def test_local_folders_and_paths_are_never_downloaded(fake_hub, tmp_path, monkeypatch):
    (tmp_path / "owner" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert datasets.resolve_dataset_dir("owner/name") == tmp_path.joinpath("owner/name").relative_to(tmp_path)
    assert datasets.resolve_dataset_dir("owner/typo") == tmp_path.joinpath("owner/typo").relative_to(tmp_path)
    assert datasets.resolve_dataset_dir("data/tok") == Path("data/tok")   # issue 19: no `data` folder here, still a path
    for value in ("./a/b", "/a/b", "a/b/c", "fineweb", "gpjt/fineweb-gpt2-tokens", tmp_path):
        datasets.resolve_dataset_dir(value)
    assert fake_hub == []


def test_without_a_network_the_error_says_which_files_go_where(tmp_path, monkeypatch):
    hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("GPTNB_DATA_DIR", str(tmp_path / "cache"))

    def offline(*args, **kwargs): raise hub.errors.LocalEntryNotFoundError("cannot reach the Hub")
    monkeypatch.setattr(hub, "snapshot_download", offline)
    with pytest.raises(FileNotFoundError) as err: datasets.resolve_dataset_dir("hf:gpjt/fineweb-gpt2-tokens")
    for words in ("gpjt/fineweb-gpt2-tokens", "train.safetensors and validation.safetensors", "'tokens'",
                  str(tmp_path / "cache" / "datasets" / "gpjt" / "fineweb-gpt2-tokens"), "cannot reach the Hub"):
        assert words in str(err.value)


def test_a_hub_dataset_without_the_split_files_is_named(tmp_path, monkeypatch):
    hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("GPTNB_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(hub, "snapshot_download", lambda repo_id, repo_type, local_dir, allow_patterns: None)
    with pytest.raises(FileNotFoundError) as err: datasets.resolve_dataset_dir("hf:someone/other-data", ("validation",))
    assert "'someone/other-data' has no ['validation.safetensors']" in str(err.value)


@pytest.mark.parametrize("splits", [("test",), (), "validation"])
def test_resolve_dataset_dir_bad_splits(splits):
    with pytest.raises(ValueError) as err: datasets.resolve_dataset_dir("hf:gpjt/fineweb-gpt2-tokens", splits)
    assert "valid splits: ('train', 'validation')" in str(err.value)


@pytest.mark.parametrize("offsets", [None, [0], "0,8", [0, "8"]])
def test_a_token_header_without_valid_data_offsets_is_named(tmp_path, offsets):
    import struct
    info = {"dtype": "I32", "shape": [2]}
    if offsets is not None: info["data_offsets"] = offsets
    header = json.dumps({"tokens": info}).encode()
    path = tmp_path / "validation.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    with pytest.raises(ValueError, match="data_offsets") as err: load_tokens(path)
    assert str(path) in str(err.value)


# ---------------------------------------------------------------- hashing once: the sha256 cache

def test_an_unchanged_dataset_is_not_rehashed(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"; corpus.mkdir()
    for i in range(4): (corpus / f"{i}.txt").write_text(f"document {i} " * 40)
    monkeypatch.setenv("GPTNB_DATA_DIR", str(tmp_path / "data"))
    out = prepare_token_dataset(corpus, tmp_path / "ds", vocab_size=8192)
    cache = json.loads((out / datasets.SHA256_CACHE).read_text())
    assert {Path(k).name for k in cache} == {"train.safetensors", "validation.safetensors"}   # hashed while written
    read = []
    monkeypatch.setattr(datasets, "sha256_file", lambda p: read.append(Path(p).name) or real_sha(p))
    assert prepare_token_dataset(corpus, tmp_path / "ds", vocab_size=8192) == out
    assert "train.safetensors" not in read and "validation.safetensors" not in read


def real_sha(path):
    import hashlib
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_a_changed_dataset_file_is_rehashed(tmp_path, monkeypatch):
    "Same size, modification time set back, same inode: the change time still differs, so the file is hashed and rebuilt."
    corpus = tmp_path / "corpus"; corpus.mkdir()
    for i in range(4): (corpus / f"{i}.txt").write_text(f"document {i} " * 40)
    monkeypatch.setenv("GPTNB_DATA_DIR", str(tmp_path / "data"))
    out = prepare_token_dataset(corpus, tmp_path / "ds", vocab_size=8192)
    train = out / "train.safetensors"
    good, st = train.read_bytes(), train.stat()
    with open(train, "r+b") as f:   # in place: the inode stays
        f.seek(len(good) - 2); f.write(bytes([good[-2] ^ 1]))
    os.utime(train, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert train.stat().st_size == st.st_size and train.stat().st_ino == st.st_ino
    assert datasets.verified_sha256(train, out) == real_sha(train) != load_manifest(out)["splits"]["train"]["sha256"]
    prepare_token_dataset(corpus, tmp_path / "ds", vocab_size=8192)   # sees the change and prepares the files again
    assert train.read_bytes() == good


def test_a_source_file_changed_in_place_gives_a_new_identity(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTNB_DATA_DIR", str(tmp_path / "data")); (tmp_path / "data").mkdir()
    doc = tmp_path / "a.txt"; doc.write_text("first text " * 30)
    name, ident = datasets._source_identity(doc)
    st = doc.stat()
    doc.write_text("other text " * 30)   # the same size
    os.utime(doc, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert datasets._source_identity(doc)[1]["files"][0]["sha256"] == real_sha(doc) != ident["files"][0]["sha256"]


def test_a_read_only_dataset_folder_is_hashed_every_time(tmp_path):
    f = tmp_path / "ro" / "x.bin"; f.parent.mkdir(); f.write_bytes(b"abc")
    f.parent.chmod(0o555)
    try:
        if os.access(f.parent, os.W_OK): pytest.skip("running as a user who can write to read-only folders")
        assert datasets.verified_sha256(f, f.parent) == real_sha(f)
        assert not (f.parent / datasets.SHA256_CACHE).exists()
    finally: f.parent.chmod(0o755)


def test_tokenizing_outside_a_terminal_prints_one_final_line(tmp_path, capsys, monkeypatch):
    "Notebooks and logs get no progress-bar chunks on stderr, only one line on stdout when the pass ends."
    corpus = tmp_path / "corpus"; corpus.mkdir()
    for i in range(300): (corpus / f"{i:03d}.txt").write_text(f"document {i} " * 5)   # three batches of 128
    monkeypatch.setenv("GPTNB_DATA_DIR", str(tmp_path / "data"))
    prepare_token_dataset(corpus, tmp_path / "ds", vocab_size=8192)
    out, err = capsys.readouterr()
    assert err == "" and out == "tokenized (gpt2-bpe8192): 300 documents\n"
