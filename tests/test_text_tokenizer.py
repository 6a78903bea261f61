"""WordPiece from the offline default files, checked against transformers' BertTokenizer on the same vocab."""

import pytest

from videobert.text import WordPieceTokenizer, default_tokenizer_dir, write_subset_vocab
from videobert.vocab import UnifiedVocab

TEXTS = [
    "Now let me show you how to cut the onion.",
    "Café au lait — DON'T over-whisk the eggs!!",
    "",
    "unbelievably thermostatically xylophones 3.14159",
    "straße naïve 東京 emoji 🙂",
]


@pytest.fixture(scope="module")
def tokenizer():
    return WordPieceTokenizer()


def test_default_files_are_bert_uncased_without_specials(tokenizer):
    vocab = UnifiedVocab()
    assert tokenizer.vocab_size == vocab.text_vocab_size
    assert [tokenizer.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [
        vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id]
    ids = tokenizer.encode("hello world")
    assert ids == [7592, 2088]  # no [CLS]/[SEP], no padding to the file's fixed 128


def test_matches_transformers_bert_tokenizer(tokenizer):
    transformers = pytest.importorskip("transformers")
    reference = transformers.BertTokenizer(str(default_tokenizer_dir() / "vocab.txt"), do_lower_case=True)
    expected = [reference.encode(t, add_special_tokens=False) for t in TEXTS]
    assert tokenizer.encode_batch(TEXTS) == expected
    assert WordPieceTokenizer(default_tokenizer_dir() / "vocab.txt").encode_batch(TEXTS) == expected


def test_decode_round_trip_and_batch_equals_single(tokenizer):
    ids = tokenizer.encode_batch(TEXTS)
    assert ids == [tokenizer.encode(t) for t in TEXTS]
    assert tokenizer.decode(ids[0]) == "now let me show you how to cut the onion."


def test_from_a_small_vocab_txt(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cut", "the", "on", "##ion"]) + "\n")
    small = WordPieceTokenizer(tmp_path)
    assert small.encode("Cut the onion pie") == [5, 6, 7, 8, 1]


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer.json or vocab.txt"):
        WordPieceTokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match="tokenizer.json: cannot load"):
        WordPieceTokenizer(tmp_path / "tokenizer.json")


def test_subset_vocab_tokenises_its_texts_as_bert_does(tokenizer, tmp_path):
    texts = TEXTS[:2] + ["now let me show you how to spin the triangle."]
    subset = write_subset_vocab(texts, tmp_path / "vocab.txt")
    full_tokens = (default_tokenizer_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    subset_tokens = (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()
    vocab = UnifiedVocab()
    assert subset_tokens[: vocab.mask_id + 1] == full_tokens[: vocab.mask_id + 1]  # the special ids stay BERT's
    used = {i for ids in tokenizer.encode_batch(texts) for i in ids}
    assert subset.vocab_size == vocab.mask_id + 1 + len(used)
    for full_ids, subset_ids in zip(tokenizer.encode_batch(texts), subset.encode_batch(texts)):
        assert [full_tokens[i] for i in full_ids] == [subset_tokens[i] for i in subset_ids]
    assert subset.encode("kitchen") == [vocab.unk_id]  # a word outside the texts


def test_subset_vocab_needs_berts_special_ids(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cut"]) + "\n")
    with pytest.raises(ValueError, match="special tokens are not at BERT's ids"):
        write_subset_vocab(["cut"], tmp_path / "subset.txt", base=tmp_path)
