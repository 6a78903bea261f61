"""Sentence splitting: punctuation, pauses, maximum length, the punctuator hook, and properties."""

from hypothesis import given, settings
from hypothesis import strategies as st

from videobert.text import Cue, Word, split_sentences
from videobert.text.sentences import cue_words, ends_sentence


def timed(text: str, start: float = 0.0, step: float = 0.5) -> Cue:
    words = tuple(Word(start + i * step, start + (i + 1) * step, w) for i, w in enumerate(text.split()))
    return Cue(words[0].start, words[-1].end, text, words)


def test_punctuation_splits_and_keeps_times():
    sentences = split_sentences([timed("First cut the onion. Then fry it! Done? yes")])
    assert [s.text for s in sentences] == ["First cut the onion.", "Then fry it!", "Done?", "yes"]
    assert [(s.start, s.end) for s in sentences] == [(0.0, 2.0), (2.0, 3.5), (3.5, 4.0), (4.0, 4.5)]


def test_abbreviations_numbers_and_closing_quotes():
    assert not ends_sentence("Dr.") and not ends_sentence("e.g.") and not ends_sentence("3.5")
    assert ends_sentence('it."') and ends_sentence("now…") and ends_sentence("(really?)")
    texts = [s.text for s in split_sentences([timed('Ask Dr. Smith about step 3. "Stir it." ok')])]
    assert texts == ["Ask Dr. Smith about step 3.", '"Stir it."', "ok"]


def test_pauses_split_unpunctuated_asr():
    cues = [timed("now let me show you", 0.0), timed("how to cut the onion", 2.7), timed("and then fry it", 6.5)]
    texts = [s.text for s in split_sentences(cues, max_pause=1.0)]
    assert texts == ["now let me show you how to cut the onion", "and then fry it"]
    assert len(split_sentences(cues, max_pause=0.1)) == 3


def test_max_words_cuts_long_runs():
    sentences = split_sentences([timed(" ".join(f"w{i}" for i in range(25)))], max_words=10)
    assert [len(s.text.split()) for s in sentences] == [10, 10, 5]


def test_cues_without_word_times_spread_time_by_length():
    words = cue_words([Cue(10.0, 13.0, "ab abcd")])
    assert [(w.start, w.end) for w in words] == [(10.0, 11.0), (11.0, 13.0)]


class PeriodAfterOkay:
    """A stand-in punctuation model: a sentence ends after every 'okay'."""

    def punctuate(self, words):
        return [w + "." if w == "okay" else w for w in words]


def test_pluggable_punctuator():
    cues = [timed("okay first we wash okay now we cut")]
    assert len(split_sentences(cues)) == 1
    assert [s.text for s in split_sentences(cues, punctuator=PeriodAfterOkay())] == ["okay.", "first we wash okay.", "now we cut"]


word_text = st.sampled_from(["cut", "the", "onion.", "now", "fry", "it?", "ok", "Dr.", "stir!"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(word_text, st.floats(0.0, 2.0), st.floats(0.01, 1.0)), min_size=1, max_size=60),
    st.integers(1, 12),
    st.floats(0.1, 1.5),
)
def test_sentences_partition_the_word_stream(items, max_words, max_pause):
    t, words = 0.0, []
    for text, gap, length in items:
        words.append(Word(t + gap, t + gap + length, text))
        t = words[-1].end
    cues = [Cue(w.start, w.end, w.text, (w,)) for w in words]
    sentences = split_sentences(cues, max_pause=max_pause, max_words=max_words)
    assert " ".join(s.text for s in sentences).split() == [w.text for w in words]  # every word once, in order
    assert all(1 <= len(s.text.split()) <= max_words for s in sentences)
    assert all(s.start <= s.end for s in sentences)
    assert all(a.end <= b.start for a, b in zip(sentences, sentences[1:]))
    assert sentences[0].start == words[0].start and sentences[-1].end == words[-1].end
