"""Reports: turn a result into tables (text formats here), documents (LaTeX, HTML) and plots.

Exporters only turn a result into text or bytes; the CLI decides where it goes.
"""
