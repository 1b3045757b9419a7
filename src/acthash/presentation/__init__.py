"""Figures, the phase chart, the paper's claims and the HTML report. Reads the result store
only; never imports the training stack."""
