"""The reinforcement-learning agents: DQN, PPO, neuroevolution (GA, ES) and MAML."""
