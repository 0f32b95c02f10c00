"""Conformance kits: `sandbox conform ROLE --url URL` tests an outside hospital, center or province against the
document and writes a go-live report.

The pieces:
- `catalogue/<role>.yaml` — the requirements, as data: id, source in the document or ERRATA, severity, tags,
  Chinese and English text (`model.Requirement`);
- `kits/<role>.py` — one `Kit` subclass per role, with one `@check(ID)` method per requirement of its catalogue;
- `runner.run_kit` — selects the requirements (`--only`/`--skip`), runs the kit, turns every outcome into a
  `Result` (a crashing check is an `error`, never a traceback on the terminal);
- `report` — terminal table, JUnit XML, JSON and one self-contained HTML page.
"""
