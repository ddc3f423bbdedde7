"""The reading workflow on top of the sync pipeline.

- `filters`: which items get a note at all (collections, tags; `zob new` pins exceptions);
- `matching` + `newnote`: `zob new QUERY` and `zob new --method NAME`;
- `progress`: reading stages from `pass`/`status`, and the history the state DB keeps of them;
- `queue`: the managed `Reading queue.md`;
- `report`: `zob report --week`, `Reports/YYYY-Www.md`;
- `writeback`: progress tags (`pass/1` … `dropped`) back onto the Zotero items;
- `templates_export`: `zob templates export DIR`;
- `hooks`: what a sync does after its notes are written (history, queue, writeback).

Nothing here changes how a paper or method note is planned or merged: every note this package
writes goes through `plan_note` and `apply`, so the merge rules hold for it too.
"""
