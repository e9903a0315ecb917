"""Training: losses, the activation cache and probe (head) training."""
