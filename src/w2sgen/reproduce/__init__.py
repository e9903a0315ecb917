"""``w2s reproduce``: the paper's claims (Burns et al. 2023), stated with statistics and verdicts on a
model ladder.

``design`` builds the grid (every weak model supervising every stronger one) as sweep runs;
``run`` runs it through the sweep engine and ties the steps together; ``evidence`` collects every
stage's test predictions; ``claims`` computes the six claims with 95% intervals and verdicts from the
aggregation module's machinery; ``report`` writes the claims table, the ceilings and report.html.
"""
