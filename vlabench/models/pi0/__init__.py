"""pi0 (Black et al. 2024) on vlabench's prunable decoder: PaliGemma prefix, Gemma action expert,
flow matching. Layout and semantics follow openpi's PyTorch port as lerobot 0.4.4 ships it."""
