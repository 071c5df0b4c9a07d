"""CogACT (arXiv 2411.19650): Prismatic VLM + cognition token + DiT diffusion action model."""
