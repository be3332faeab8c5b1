"""Wording shared by the CLI and the window."""


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """'1 image', '2 images' (`plural` for nouns that do not take an s)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
