"""Library functions behind the data-preparation stages (prepare_speakers, prepare_sounds)."""
