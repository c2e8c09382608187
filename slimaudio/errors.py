"""Error types whose message is the one line a user sees."""


class SlimAudioError(Exception):
    """Base class: the CLI prints `error: <message>` and exits 2, without a traceback."""


class ParamError(SlimAudioError):
    """A params.yaml key is unknown, mistyped, missing or out of range."""


class BadAudioError(SlimAudioError):
    """An audio file is corrupt, empty, silent, too short, non-finite or unsupported."""


class DataError(SlimAudioError):
    """A corpus layout or a prepared data folder is not what a stage expects."""


class CheckpointError(DataError):
    """A model checkpoint is unreadable, or holds more than plain data (tensors, numbers,
    strings, lists, dicts) and is refused rather than unpickled: loading it could run code."""
