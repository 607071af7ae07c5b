"""Task-neutral plumbing on the ground floor, beside backbones/ (the model): user errors, config files
and overrides, checkpoint files, image reading and batching, and the training-loop pieces that
pre-training and classification share. Imports nothing of the project."""
