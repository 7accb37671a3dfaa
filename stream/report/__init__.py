"""``tidewatch report``: one self-contained HTML page of a model's monitoring results.

:mod:`stream.report.data` reads the store with parameterised queries;
:mod:`stream.report.page` draws the figures (plotly, its JavaScript inlined so the page opens
offline) and writes the file.
"""
