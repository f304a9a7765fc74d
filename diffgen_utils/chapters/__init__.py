"""One module per chapter: the computations, tables and figures of chapters 02 (generalization),
03 (harmonic), 04 (optimality) and 05 (manifolds), on top of the science modules of
diffgen_utils. A chapter module imports no other chapter's and nothing of diffgen_utils.book."""
