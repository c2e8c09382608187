"""The summary report: every study's tables beside the papers', the papers' findings judged by
each study's own rules, and one cross-study view built from the studies' common rows files.

Nothing is recomputed here: `studies.py` lists the studies, `page.py` reads their report
folders and renders the page, `cross_study.py` joins their rows, `html.py` turns the page into
HTML. `compare.py` diffs two report trees, timings aside (`make compare-reports`): the check
that a refactor moved no number.
"""
