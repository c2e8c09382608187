"""Study drivers: each turns trained models into a paper's tables and plots."""
