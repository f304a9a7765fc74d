"""The book's tooling: the runner (run), the scorecard, the browser check of the built pages and
the Sphinx fixes it needed (book_sphinx). It imports no chapter module."""
