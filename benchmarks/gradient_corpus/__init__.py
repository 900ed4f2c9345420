"""A corpus of real custom autograd code that nobody here wrote, for measuring gradient checkers.

Cases import pip packages (entmax, sparsemax, qpth, cvxpylayers, torchsort, snntorch, torchdiffeq,
vector-quantize-pytorch, kornia, x-transformers, monai, torch-geometric) and never copy their
code. ``registry.all_cases()`` lists the cases of the installed packages; ``all_mutants`` adds a
gradient tap to every correct one; ``tally.corpus_main`` runs the checkers (see
benchmarks/gradcheck_vs_torch.py for the install line).
"""
