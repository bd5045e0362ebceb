"""Training: the DQN trainer (rl-agents' recipe) and the zoo of independently trained agents."""
