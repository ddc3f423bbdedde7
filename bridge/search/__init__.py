"""Offline search over the vault: notes, highlights and Zotero's full-text cache.

`tokens` cuts text into terms (CJK as character bigrams), `passages` cuts a note into
passages, `fulltext` reads Zotero's `.zotero-ft-cache`, `store` keeps the index in
`<vault>/.zotero-bridge/search.sqlite` (SQLite FTS5, BM25), `engine` answers queries,
`related`/`suggest`/`ask` build on it and `commands` holds the click commands.
"""
