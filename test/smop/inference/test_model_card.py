"""The model card's fixed parts: its citation is README's."""

from pathlib import Path

from smop.inference.model_card import CITATION

README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_cards_citation_is_readmes():
    readme = README.read_text(encoding="utf-8")
    entries = ["@" + e.lstrip("@") for e in CITATION.split("\n@")]
    assert len(entries) == 2 and entries[0].startswith("@inproceedings{cappellazzo2025smop,")
    for entry in entries:
        assert entry in readme, entry.splitlines()[0]
