"""Speaker verification: training, embedding extraction, scoring."""
