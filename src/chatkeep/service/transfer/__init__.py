"""Export and import of conversations: chatkeep's own JSON and JSON Lines (a faithful copy, ids,
seqs and timestamps included), Markdown transcripts, and imports from a ChatGPT data export or an
OpenAI-style message list. Both sides stream, a page or a conversation at a time."""

from __future__ import annotations

from chatkeep.service.transfer.export import MEDIA_TYPES, Export, Exporter, Format, Selection
from chatkeep.service.transfer.importer import Importer, Owner, Summary

__all__ = ["MEDIA_TYPES", "Export", "Exporter", "Format", "Importer", "Owner", "Selection", "Summary"]
