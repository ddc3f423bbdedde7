"""zotero-obsidian-bridge: keep an Obsidian vault in step with a Zotero library."""

__version__ = "0.1.0"
