"""The lead's language, detected with py3langid (a pinned, offline model shipped in the wheel).

Short or ambiguous messages are "" (unknown): the reply is then in English, like the template.
"""

from __future__ import annotations

from functools import lru_cache

#: Below this share of probability the guess is not used.
MIN_CONFIDENCE = 0.6
#: Fewer letters than this say too little to tell a language.
MIN_LETTERS = 8

NAMES = {
    "ar": "Arabic",
    "cs": "Czech",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "fi": "Finnish",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "hu": "Hungarian",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "nl": "Dutch",
    "no": "Norwegian",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sv": "Swedish",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "zh": "Chinese",
}


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect(text: str) -> str:
    """An ISO 639-1 code such as ``fr``, or "" when the text is too short or unclear."""
    sample = " ".join(text.split())[:2000]
    if sum(ch.isalpha() for ch in sample) < MIN_LETTERS:
        return ""
    code, confidence = _identifier().classify(sample)
    return code if confidence >= MIN_CONFIDENCE else ""


def name_of(code: str) -> str:
    return NAMES.get(code, code)
