"""Sphinx fixes for the built book (loaded through _config.yml, sphinx.extra_extensions).

The browser check (diffgen_utils.book.browser_check) saw this in the console of every page of a
Jupyter Book 1.x build with these versions: sphinx-thebe 0.3.1 adds its inline configuration
script (`const THEBE_JS_URL = ...`) twice under Sphinx 7, so the second copy throws "Identifier
'THEBE_JS_URL' has already been declared". Identical scripts are kept once. (The other console
error of every page, pydata-sphinx-theme's "Got invalid theme mode", is fixed in _config.yml by
html_context.default_mode.)
"""
from __future__ import annotations


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        # an inline script added after the builder started is there twice, once with the
        # filename None and once with '' (Sphinx 7.4 compares them as different)
        filename = getattr(script, "filename", script) or ""
        attributes = getattr(script, "attributes", {}) or {}
        key = (str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
