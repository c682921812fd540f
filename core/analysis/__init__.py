"""Analysis: evaluation, inspection (weights, saliency), embedding maps, cross-dataset evaluation."""
