"""Model cards (model-index from evaluations) and Hub publishing of runs and dataset builds in one commit."""
